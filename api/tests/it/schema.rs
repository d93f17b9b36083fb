//! The schema as a deployment step: `migrate`, the refusal to start on a schema this build
//! does not match, and the read-only role dashboards connect as.

use axum::http::StatusCode;
use flagstream_api::config::MigrateArgs;
use sqlx::{Connection, PgConnection};

use crate::{config, database_with_url, seed_flags, Api};

/// A migration version later than any this build knows.
const FUTURE: i64 = 29_991_231_000_001;

/// The API's config for `url`, with MIGRATE_ON_START=false.
fn unmigrating(url: &str) -> flagstream_api::Config {
    let mut config = config(&["--migrate-on-start", "false"]);
    config.database_url = Some(url.into());
    config
}

fn migrate_args(check: bool) -> MigrateArgs {
    MigrateArgs {
        check,
        wait_secs: 0,
    }
}

#[tokio::test]
async fn without_migrate_on_start_an_unmigrated_database_is_refused_until_migrate_runs() {
    let (_pool, url) = database_with_url(false).await;
    let config = unmigrating(&url);

    let refused = flagstream_api::connect(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not migrated"), "{refused}");
    assert!(refused.contains("flagstream-api migrate"), "{refused}");
    let unchecked = flagstream_api::migrate(&config, &migrate_args(true)).await;
    assert!(unchecked.unwrap_err().to_string().contains("0 of"));

    let said = flagstream_api::migrate(&config, &migrate_args(false))
        .await
        .unwrap();
    let expected = flagstream_api::MIGRATOR.iter().count();
    assert_eq!(
        said,
        format!("applied {expected} migration(s); schema is current ({expected} migrations)")
    );
    let again = flagstream_api::migrate(&config, &migrate_args(false))
        .await
        .unwrap();
    assert!(again.starts_with("applied 0 migration(s)"), "{again}");
    flagstream_api::connect(&config).await.unwrap();
    let checked = flagstream_api::migrate(&config, &migrate_args(true))
        .await
        .unwrap();
    assert_eq!(
        checked,
        format!("schema is current ({expected} migrations)")
    );
}

/// A migrated database after `tamper`, the API's config for it (MIGRATE_ON_START=false),
/// and why the API refuses to start on it.
async fn refusal_after(tamper: &str) -> (sqlx::PgPool, flagstream_api::Config, String) {
    let (pool, url) = database_with_url(true).await;
    sqlx::query(tamper).execute(&pool).await.unwrap();
    let config = unmigrating(&url);
    let refused = flagstream_api::connect(&config)
        .await
        .unwrap_err()
        .to_string();
    (pool, config, refused)
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused_and_not_ready() {
    let (pool, config, refused) = refusal_after(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ({FUTURE}, 'from a later release', true, '\\x00', 1)"
    ))
    .await;
    assert!(refused.contains("newer than this build"), "{refused}");
    assert!(refused.contains(&FUTURE.to_string()), "{refused}");
    // Migrating does not paper over it either.
    let migrating = flagstream_api::migrate(&config, &migrate_args(false)).await;
    assert!(migrating.is_err());

    let (status, body) = Api::with_pool(pool, &[])
        .call("GET", "/ready", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["migrations"]["status"], "mismatch");
}

#[tokio::test]
async fn an_altered_migration_is_refused() {
    let (_, _, refused) = refusal_after(
        "UPDATE _sqlx_migrations SET checksum = '\\x00'
         WHERE version = (SELECT min(version) FROM _sqlx_migrations)",
    )
    .await;
    assert!(
        refused.contains("was changed after it was applied"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_readonly_role_reads_dashboards_data_but_no_credentials_or_content() {
    let (pool, url) = database_with_url(true).await;
    seed_flags(&pool, 3).await;
    let login = format!("reader_{}", std::process::id());
    // Roles are cluster-wide: another run of this test may have left it.
    sqlx::query(&format!("DROP ROLE IF EXISTS {login}"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE ROLE {login} LOGIN PASSWORD 'reader-password' IN ROLE flagstream_readonly"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let reader_url = url.replacen("postgres@", &format!("{login}:reader-password@"), 1);
    let mut reader = PgConnection::connect(&reader_url).await.unwrap();

    let (flags, detections): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(id) FROM flags WHERE severity IS NOT NULL),
                (SELECT count(*) FROM detections)",
    )
    .fetch_one(&mut reader)
    .await
    .unwrap();
    assert_eq!((flags, detections), (3, 3));
    for forbidden in [
        "SELECT content FROM flags",
        "SELECT payload FROM dead_letters",
        "SELECT password_hash FROM users",
        "SELECT key_hash FROM api_keys",
        "SELECT * FROM audit_log",
        "INSERT INTO rules (id, definition) VALUES ('x', '{}')",
    ] {
        let denied = sqlx::query(forbidden)
            .execute(&mut reader)
            .await
            .unwrap_err();
        let code = denied.as_database_error().and_then(|e| e.code()).unwrap();
        assert_eq!(code, "42501", "{forbidden}: {denied}");
    }
    reader.close().await.unwrap();
    sqlx::query(&format!("DROP ROLE {login}"))
        .execute(&pool)
        .await
        .unwrap();
}
