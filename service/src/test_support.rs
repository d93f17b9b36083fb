//! Fresh databases for integration tests on the throwaway cluster `scripts/test` starts
//! (`FLAGSTREAM_TEST_DATABASE_URL`): one per test, so tests run in parallel.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, PgPool};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call, for databases, topics and groups.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

/// A new database with no schema at all.
pub async fn empty_database() -> TestDb {
    let admin = std::env::var("FLAGSTREAM_TEST_DATABASE_URL").expect(
        "FLAGSTREAM_TEST_DATABASE_URL is not set: run the suite with scripts/test, which starts PostgreSQL",
    );
    let name = unique("fs_test");
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect to the test cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
    let url = format!("{base}/{name}");
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to test database");
    TestDb { url, pool }
}

/// A new database with `migrator`'s schema.
pub async fn fresh_database(migrator: &Migrator) -> TestDb {
    let db = empty_database().await;
    migrator.run(&db.pool).await.expect("migrate test database");
    db
}
