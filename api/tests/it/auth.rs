use axum::http::StatusCode;
use clap::Parser as _;
use flagstream_api::auth::Role;
use flagstream_api::users;
use serde_json::json;

use crate::{config, database, database_with_url, Api};

async fn audit_rows(api: &Api, action: &str) -> Vec<(String, bool, serde_json::Value)> {
    sqlx::query_as("SELECT actor, success, details FROM audit_log WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(api.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn login_issues_a_token_and_failures_are_audited_and_throttled() {
    let api = Api::with_pool(database(true).await, &["--login-max-failures", "3"]);
    users::create(
        api.pool(),
        "alice",
        "correct horse battery".into(),
        Role::Analyst,
        false,
    )
    .await
    .unwrap();
    let login =
        |username: &str, password: &str| json!({ "username": username, "password": password });

    let (status, body) = api.login("alice", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "analyst");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, me) = api.call("GET", "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({ "name": "alice", "role": "analyst", "kind": "user" })
    );

    // Unknown user and wrong password look alike to the caller.
    let (s1, b1) = api.login("mallory", "whatever-password").await;
    let (s2, b2) = api.login("alice", "wrong password!!").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    assert!(!b2.to_string().contains("wrong password!!"));

    // Two more failures reach the limit of 3; then even the right password is refused.
    for _ in 0..2 {
        let (s, _) = api.login("alice", "wrong password!!").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let response = api
        .send(
            axum::http::Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    login("alice", "correct horse battery").to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");

    let rows = audit_rows(&api, "login").await;
    let reasons: Vec<_> = rows
        .iter()
        .map(|(_, ok, d)| (*ok, d["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (true, serde_json::Value::Null),
            (false, json!("unknown_user")),
            (false, json!("wrong_password")),
            (false, json!("wrong_password")),
            (false, json!("wrong_password")),
            (false, json!("throttled")),
        ]
    );
    // The password never reaches the audit log.
    let all: String = sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM audit_log")
        .fetch_one(api.pool())
        .await
        .unwrap();
    assert!(!all.contains("wrong password") && !all.contains("battery"));
}

#[tokio::test]
async fn users_are_managed_by_admins_and_bootstrap_runs_once() {
    let pool = database(true).await;
    assert!(
        users::bootstrap(&pool, "root", "first admin password".into())
            .await
            .unwrap()
    );
    assert!(
        !users::bootstrap(&pool, "root2", "second admin password".into())
            .await
            .unwrap()
    );
    let api = Api::with_pool(pool, &[]);
    let (s, body) = api.login("root", "first admin password").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let admin = body["token"].as_str().unwrap().to_owned();

    for (password, expected) in [
        ("short", StatusCode::UNPROCESSABLE_ENTITY),
        ("a long enough one", StatusCode::OK),
        ("a long enough one", StatusCode::CONFLICT),
    ] {
        let user = json!({"username": "bob", "password": password, "role": "viewer"});
        let (s, body) = api
            .call("POST", "/api/v1/admin/users", Some(&admin), Some(user))
            .await;
        assert_eq!(s, expected, "{body}");
        if s == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(body["error"]["field"], "password");
        }
    }
    let (s, body) = api
        .call(
            "PATCH",
            "/api/v1/admin/users/bob",
            Some(&admin),
            Some(json!({"role": "analyst"})),
        )
        .await;
    assert_eq!(
        (s, body["role"].as_str()),
        (StatusCode::OK, Some("analyst"))
    );
    let (s, _) = api
        .call(
            "PATCH",
            "/api/v1/admin/users/root",
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "an admin cannot lock themselves out"
    );
    let (_, list) = api
        .call("GET", "/api/v1/admin/users", Some(&admin), None)
        .await;
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "root"]);
    assert!(
        !list.to_string().contains("argon2"),
        "hashes never leave the database"
    );

    // API keys: shown once, stored hashed, listed by prefix.
    let (s, key) = api
        .call(
            "POST",
            "/api/v1/admin/api-keys",
            Some(&admin),
            Some(json!({"name": "siem", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    let (_, keys) = api
        .call("GET", "/api/v1/admin/api-keys", Some(&admin), None)
        .await;
    assert!(!keys.to_string().contains(secret));
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE key_hash::text LIKE '%' || $1 || '%'",
    )
    .bind(secret)
    .fetch_one(api.pool())
    .await
    .unwrap();
    assert_eq!(stored, 0);
    let (s, me) = api.call("GET", "/api/v1/auth/me", Some(secret), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["kind"], "api_key");

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action <> 'login' ORDER BY id")
            .fetch_all(api.pool())
            .await
            .unwrap();
    assert_eq!(actions, ["user.create", "user.update", "api_key.create"]);
    let (s, audit) = api
        .call(
            "GET",
            "/api/v1/audit?action=user.create",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(audit["entries"][0]["target"], "bob");
    assert_eq!(audit["entries"][0]["actor"], "root");
}

#[tokio::test]
async fn the_cli_creates_the_first_admin_from_stdin() {
    use std::io::Write as _;
    let (pool, url) = database_with_url(true).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flagstream-api"))
        .args(["user", "create", "--username", "carol", "--role", "admin"])
        .env("DATABASE_URL", &url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"carols long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("carols long password"));
    let api = Api::with_pool(pool, &[]);
    let (s, body) = api.login("carol", "carols long password").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
}

const ED25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIK3l4isB5HL3P8tZWEkH2ANadgNjoPU7lys49cbzGMxt
-----END PRIVATE KEY-----
";
const ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAgH8ODGJHVyfnr/hl/pBKEcpXIzCcHXq9MSx7ImsD7TY=
-----END PUBLIC KEY-----
";

#[tokio::test]
async fn asymmetric_tokens_and_no_algorithm_confusion() {
    let dir = std::env::temp_dir().join(format!("fs-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (private, public) = (dir.join("jwt.pem"), dir.join("jwt.pub"));
    std::fs::write(&private, ED25519_PRIVATE).unwrap();
    std::fs::write(&public, ED25519_PUBLIC).unwrap();
    let args = [
        "--jwt-private-key-file",
        private.to_str().unwrap(),
        "--jwt-public-key-file",
        public.to_str().unwrap(),
    ];
    let jwt = flagstream_api::auth::Jwt::from_config(&config(&args)).unwrap();
    let (token, _) = jwt.issue("admin", Role::Admin, 0).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        jsonwebtoken::Algorithm::EdDSA
    );
    assert_eq!(jwt.verify(&token).unwrap().sub, "admin");
    // HS256 keyed with the public key, the classic confusion attack, and HS256 with the
    // configured shared secret (ignored when keys are set): both refused.
    let claims = jwt.verify(&token).unwrap();
    for secret in [ED25519_PUBLIC.as_bytes(), crate::JWT_SECRET.as_bytes()] {
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert!(jwt.verify(&forged).is_none());
    }
    // Short secrets and half a key pair are start-up errors.
    let short = flagstream_api::Cli::try_parse_from(["x", "--jwt-secret-key", "short"]).unwrap();
    assert!(flagstream_api::auth::Jwt::from_config(&short.config).is_err());
    let half = config(&args[..2]);
    assert!(flagstream_api::auth::Jwt::from_config(&half).is_err());
}
