//! Every endpoint × every role and credential: the route table's roles are what is enforced.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flagstream_api::auth::Role;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::{seed_flags, Api, JWT_SECRET};

fn uri(path: &str, flag: i64) -> String {
    path.replace("/flags/{id}", &format!("/flags/{flag}"))
        .replace("/rules/{id}", "/rules/test.rule")
        .replace("/api-keys/{id}", "/api-keys/999999")
        .replace("/alerts/routes/{id}", "/alerts/routes/test.route")
        .replace(
            "/alerts/destinations/{id}",
            "/alerts/destinations/test.destination",
        )
        .replace("/alerts/deliveries/{id}", "/alerts/deliveries/999999")
        .replace("{username}", "viewer")
}

async fn status(api: &Api, method: &str, uri: &str, header: Option<(&str, String)>) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    api.send(request.body(Body::empty()).unwrap())
        .await
        .status()
}

fn bearer(token: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {token}")))
}

#[tokio::test]
async fn every_endpoint_admits_exactly_its_roles() {
    let api = Api::new().await;
    seed_flags(api.pool(), 3).await;
    let flag: i64 = sqlx::query_scalar("SELECT min(id) FROM flags")
        .fetch_one(api.pool())
        .await
        .unwrap();
    // An API key per role, made through the API.
    let mut keys = Vec::new();
    for role in [Role::Viewer, Role::Analyst, Role::Admin] {
        let (s, body) = api
            .as_role(
                Role::Admin,
                "POST",
                "/api/v1/admin/api-keys",
                Some(json!({ "name": format!("{role:?} bot"), "role": role })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        keys.push((
            role,
            body["key"].as_str().unwrap().to_owned(),
            body["id"].as_i64().unwrap(),
        ));
    }
    let (s, _) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/rules",
            Some(
                json!({"id": "test.rule", "name": "t", "severity": "low", "points": 1,
                        "kind": "keyword", "keywords": ["zebra"]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    for e in flagstream_api::endpoints() {
        let uri = uri(e.path, flag);
        let what = format!("{} {uri}", e.method);
        let anonymous = status(&api, e.method, &uri, None).await;
        let Some(min) = e.role else {
            assert_ne!(anonymous, StatusCode::UNAUTHORIZED, "{what} is open");
            continue;
        };
        assert_eq!(
            anonymous,
            StatusCode::UNAUTHORIZED,
            "{what} without credentials"
        );
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            let token = api.token(role);
            let key = &keys.iter().find(|k| k.0 == role).unwrap().1;
            for (credential, header) in [
                ("token", bearer(&token)),
                ("key as bearer", bearer(key)),
                ("x-api-key", Some(("x-api-key", key.clone()))),
            ] {
                let got = status(&api, e.method, &uri, header).await;
                if role >= min {
                    assert!(
                        got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN,
                        "{what} as {role:?} ({credential}): {got}"
                    );
                } else {
                    assert_eq!(
                        got,
                        StatusCode::FORBIDDEN,
                        "{what} as {role:?} ({credential})"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn bad_credentials_are_401_everywhere() {
    let api = Api::new().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |exp: u64, iss: &str| {
        json!({"sub": "admin", "role": "admin", "iat": now - 100, "exp": exp,
               "iss": iss, "aud": "flagstream-api"})
    };
    let sign = |claims: serde_json::Value, secret: &str, alg| {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    use jsonwebtoken::Algorithm::{HS256, HS512};
    let expired = sign(claims(now - 60, "flagstream"), JWT_SECRET, HS256);
    let wrong_signature = sign(
        claims(now + 600, "flagstream"),
        "another-secret-0123456789abcdef0123456",
        HS256,
    );
    let wrong_issuer = sign(claims(now + 600, "someone-else"), JWT_SECRET, HS256);
    // Same secret, another algorithm: the algorithm is pinned.
    let other_alg = sign(claims(now + 600, "flagstream"), JWT_SECRET, HS512);
    // `alg: none`, unsigned.
    let b64 = |v: serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims(now + 600, "flagstream"))
    );
    // A valid token for a user that was disabled after it was issued.
    let disabled = api.token(Role::Analyst);
    sqlx::query("UPDATE users SET disabled = true WHERE username = 'analyst'")
        .execute(api.pool())
        .await
        .unwrap();

    let (_, revoked) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/admin/api-keys",
            Some(json!({"name": "r", "role": "admin"})),
        )
        .await;
    let (s, _) = api
        .as_role(
            Role::Admin,
            "DELETE",
            &format!("/api/v1/admin/api-keys/{}", revoked["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, expiring) = api
        .as_role(
            Role::Admin,
            "POST",
            "/api/v1/admin/api-keys",
            Some(json!({"name": "e", "role": "admin"})),
        )
        .await;
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expiring["id"].as_i64().unwrap())
        .execute(api.pool())
        .await
        .unwrap();
    let revoked = revoked["key"].as_str().unwrap().to_owned();
    let expired_key = expiring["key"].as_str().unwrap().to_owned();
    let forged_key = format!("{}x", &revoked[..revoked.len() - 1]);

    let bad = [
        ("expired token", expired),
        ("wrong signature", wrong_signature),
        ("wrong issuer", wrong_issuer),
        ("other algorithm", other_alg),
        ("alg none", none),
        ("disabled user", disabled),
        ("revoked key", revoked),
        ("expired key", expired_key),
        ("forged key", forged_key),
        ("garbage", "not-a-token".to_owned()),
    ];
    for e in flagstream_api::endpoints()
        .iter()
        .filter(|e| e.role.is_some())
    {
        let uri = uri(e.path, 1);
        for (what, credential) in &bad {
            let got = status(&api, e.method, &uri, bearer(credential)).await;
            assert_eq!(
                got,
                StatusCode::UNAUTHORIZED,
                "{} {uri} with {what}",
                e.method
            );
        }
    }
}
