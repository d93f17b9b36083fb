use std::sync::Arc;
use std::time::Duration;

use flagstream_rules::content::Keyring;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};

use crate::auth::{Jwt, LoginLimiter};
use crate::config::Config;
use crate::cpu::CpuPool;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::Error;

/// Shared by every request; built from config, so tests can build their own.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub jwt: Arc<Jwt>,
    /// Opens content the consumer sealed; None when no key is configured.
    pub keys: Option<Keyring>,
    pub limiter: Arc<LoginLimiter>,
    pub stats: moka::sync::Cache<String, Arc<Value>>,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
    /// Statement time limit of the heavy reads (search counts, text search, stats, export).
    pub query_timeout: Duration,
    pub stats_max_range_days: u32,
    pub cpu: Arc<CpuPool>,
    pub rate_per_ip: Option<Arc<RateLimiter>>,
    pub rate_per_credential: Option<Arc<RateLimiter>>,
    /// Base of the flag links in alert messages (the dry-run renders them too).
    pub alert_api_base_url: Option<String>,
}

impl AppState {
    /// A transaction for a heavy read (search, count, text search, stats, an export page):
    /// its statements get QUERY_TIMEOUT_SECS, and one that runs over is a clear 503.
    pub async fn heavy_read(&self) -> Result<Transaction<'static, Postgres>, Error> {
        let mut tx = self.pool.begin().await?;
        crate::store::set_statement_timeout(&mut *tx, self.query_timeout).await?;
        Ok(tx)
    }

    pub fn new(pool: PgPool, config: &Config) -> Result<AppState, Error> {
        let keys = Keyring::from_config(
            config.encryption_key.as_ref().map(|s| s.expose()),
            config.encryption_keys.as_ref().map(|s| s.expose()),
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        let alert_api_base_url = config
            .alert_api_base_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| {
                if url.starts_with("https://") || url.starts_with("http://") {
                    Ok(url.trim_end_matches('/').to_owned())
                } else {
                    Err(Error::Config(format!(
                        "ALERT_API_BASE_URL `{url}` must start with http:// or https://"
                    )))
                }
            })
            .transpose()?;
        Ok(AppState {
            pool,
            jwt: Arc::new(Jwt::from_config(config)?),
            keys,
            limiter: Arc::new(LoginLimiter::new(
                Duration::from_secs(config.login_window_secs),
                config.login_max_failures,
                config.login_max_attempts_per_ip,
            )),
            stats: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(config.stats_cache_secs))
                .build(),
            metrics: Arc::new(Metrics::default()),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            query_timeout: Duration::from_secs(config.query_timeout_secs.max(1)),
            stats_max_range_days: config.stats_max_range_days.max(1),
            cpu: Arc::new(CpuPool::new(
                config.compile_jobs,
                Duration::from_secs(config.request_timeout_secs),
            )),
            rate_per_ip: RateLimiter::new(config.rate_limit_per_ip).map(Arc::new),
            rate_per_credential: RateLimiter::new(config.rate_limit_per_credential).map(Arc::new),
            alert_api_base_url,
        })
    }
}
