//! Alerting: stored flags → routes → destinations, through a transactional outbox.
//!
//! The batch transaction writes an `alert_outbox` row per stored flag (see [`crate::sink`]).
//! Every consumer replica runs this dispatcher: it claims outbox rows with `FOR UPDATE SKIP
//! LOCKED` and turns them into deliveries per route and destination, grouped
//! ([`outbox`]); then it claims due deliveries under each destination's rate limit, sends
//! them, and records the outcome, retrying with exponential backoff and jitter
//! ([`deliver`]). A delivery is leased while it is being sent, so two replicas never send it
//! at once and a dispatcher that dies mid-send leaves it to be retried, with the same
//! `Idempotency-Key`.

mod deliver;
mod flags;
mod outbox;

use std::sync::Arc;
use std::time::Duration;

use flagstream_rules::content::Keyring;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::Error;

/// What the dispatcher needs from the consumer's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_base_url: Option<String>,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub http_timeout: Duration,
    pub poll: Duration,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            // Empty means unset, as in the API: no links rather than relative ones.
            api_base_url: config
                .alert_api_base_url
                .as_deref()
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned),
            max_attempts: config.alert_max_attempts.max(1),
            retry_base: Duration::from_millis(config.alert_retry_base_ms.max(1)),
            retry_max: Duration::from_secs(config.alert_retry_max_secs.max(1)),
            http_timeout: Duration::from_secs(config.alert_http_timeout_secs.max(1)),
            poll: Duration::from_millis(config.alert_poll_ms.max(10)),
        }
    }
}

/// Routes and delivers until `shutdown`. Errors (database down, a destination that cannot
/// be opened) are logged and counted, then retried on the next round: alerting must never
/// stop consumption.
pub async fn run(
    pool: PgPool,
    keys: Option<Arc<Keyring>>,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let http = match reqwest::Client::builder()
        .timeout(settings.http_timeout)
        // A destination must not bounce alerts to an address it chooses.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("flagstream/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the alert HTTP client; alerting is off");
            return;
        }
    };
    let dispatcher = deliver::Dispatcher {
        pool: &pool,
        http: &http,
        keys: keys.as_deref(),
        settings: &settings,
        metrics: &metrics,
    };
    loop {
        if let Err(e) = round(&dispatcher).await {
            metrics.error("alerts");
            tracing::warn!(error = %e, "alert dispatch round failed; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// One round: route what the outbox holds, send what is due, report the backlog.
async fn round(d: &deliver::Dispatcher<'_>) -> Result<(), Error> {
    while outbox::route_pending(d.pool, d.metrics).await? > 0 {}
    while d.deliver_due().await? > 0 {}
    let backlog = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM alert_outbox)
                  + (SELECT count(*) FROM alert_deliveries WHERE status = 'pending') AS "depth!",
                  extract(epoch FROM now() - least(
                      (SELECT min(created_at) FROM alert_outbox),
                      (SELECT min(created_at) FROM alert_deliveries WHERE status = 'pending')
                  ))::float8 AS oldest"#
    )
    .fetch_one(d.pool)
    .await?;
    d.metrics.alert_outbox_depth.set(backlog.depth);
    d.metrics
        .alert_outbox_oldest
        .set(backlog.oldest.unwrap_or(0.0));
    Ok(())
}
