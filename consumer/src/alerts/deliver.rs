//! Due deliveries → destinations. Per destination, one transaction locks the destination
//! row, counts what was sent in the last minute and what is in flight, and leases at most
//! what the rate limit leaves; the rest waits until the window frees. The lease is what
//! makes replicas send a delivery once: it is taken with `FOR UPDATE SKIP LOCKED` and only
//! an expired lease (a dispatcher that died mid-send) lets another take it.

use std::time::Duration;

use flagstream_rules::alert::{
    signature, DestinationKind, DestinationSecret, Message, Route, RouteDefinition,
};
use flagstream_rules::content::Keyring;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::alerts::{flags, Settings};
use crate::metrics::Metrics;
use crate::Error;

pub struct Dispatcher<'a> {
    pub pool: &'a PgPool,
    pub http: &'a reqwest::Client,
    pub keys: Option<&'a Keyring>,
    pub settings: &'a Settings,
    pub metrics: &'a Metrics,
}

/// A leased delivery.
struct Leased {
    id: i64,
    key: String,
    route_id: String,
    route_version: i32,
    group_key: String,
    flag_ids: Vec<i64>,
    suppressed: i64,
    attempts: i32,
}

/// How an attempt ended, short of a 2xx.
enum Failure {
    /// Non-2xx; retried unless the destination refused the message for good.
    Status(u16),
    /// No answer: connection, TLS or timeout. The text never holds the URL.
    Network(String),
}

impl Failure {
    /// A 4xx other than 408 and 429 will not change on retry.
    fn permanent(&self) -> bool {
        matches!(self, Failure::Status(s) if (400..500).contains(s) && *s != 408 && *s != 429)
    }
}

impl Dispatcher<'_> {
    /// Sends what is due at every destination; returns how many deliveries were attempted.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let destinations: Vec<String> = sqlx::query_scalar!(
            "SELECT DISTINCT destination_id FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())"
        )
        .fetch_all(self.pool)
        .await?;
        let mut attempted = 0;
        for destination in destinations {
            attempted += self.deliver_to(&destination).await?;
        }
        Ok(attempted)
    }

    async fn deliver_to(&self, destination: &str) -> Result<usize, Error> {
        let lease = self.settings.http_timeout + Duration::from_secs(30);
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query!(
            "SELECT kind, sealed, max_per_minute FROM alert_destinations WHERE id = $1 FOR UPDATE",
            destination
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(found) = found else {
            let gone = sqlx::query!(
                "WITH f AS (
                     UPDATE alert_deliveries SET status = 'failed', lease_until = NULL,
                            last_error = 'the destination was deleted'
                     WHERE destination_id = $1 AND status = 'pending' RETURNING id
                 )
                 UPDATE alert_groups SET open_delivery = NULL
                 WHERE open_delivery IN (SELECT id FROM f)",
                destination
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::warn!(%destination, groups = gone.rows_affected(), "deliveries to a deleted destination failed");
            return Ok(0);
        };
        let (kind, sealed, max_per_minute) = (found.kind, found.sealed, found.max_per_minute);
        let used = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM alert_deliveries WHERE destination_id = $1
               AND ((status = 'sent' AND sent_at > now() - interval '1 minute')
                 OR (status = 'pending' AND lease_until > now()))"#,
            destination
        )
        .fetch_one(&mut *tx)
        .await?;
        let budget = (i64::from(max_per_minute) - used).max(0);
        let leased = sqlx::query_as!(
            Leased,
            "UPDATE alert_deliveries SET lease_until = now() + make_interval(secs => $3),
                    attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM alert_deliveries
                 WHERE destination_id = $1 AND status = 'pending' AND next_attempt_at <= now()
                   AND (lease_until IS NULL OR lease_until < now())
                 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, key, route_id, route_version, group_key, flag_ids, suppressed, attempts",
            destination,
            budget,
            lease.as_secs_f64()
        )
        .fetch_all(&mut *tx)
        .await?;
        // What the limit holds back waits for the minute's window to free, not a busy loop:
        // until the oldest send in the window is a minute old (or, when the window holds only
        // deliveries still in flight, a minute from now, as they are about to be sent). Only
        // when the limit held something back: under READ COMMITTED this statement also sees
        // deliveries committed after the lease above, which the next round sends.
        let limited = i64::try_from(leased.len()).unwrap_or(i64::MAX) >= budget;
        let postponed = if !limited {
            0
        } else {
            sqlx::query!(
                "UPDATE alert_deliveries SET next_attempt_at = coalesce(
                 (SELECT min(sent_at) FROM alert_deliveries
                  WHERE destination_id = $1 AND status = 'sent'
                    AND sent_at > now() - interval '1 minute'),
                 now()) + interval '1 minute'
             WHERE destination_id = $1 AND status = 'pending' AND next_attempt_at <= now()
               AND (lease_until IS NULL OR lease_until < now())",
                destination
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        for _ in 0..postponed {
            self.metrics
                .alert(&self.metrics.alerts_suppressed, &kind, "rate_limit");
        }
        if leased.is_empty() {
            return Ok(0);
        }
        let secret = self
            .keys
            .ok_or_else(|| Error::Config("alert destinations need the content keyring (ENCRYPTION_KEY or ENCRYPTION_KEYS)".into()))
            .and_then(|keys| Ok(DestinationSecret::open(keys, destination, &sealed)?));
        let secret = match secret {
            Ok(secret) => secret,
            Err(e) => {
                // A configuration problem, not the destination's: wait, lose nothing.
                self.release(&leased, self.settings.retry_max).await?;
                return Err(e);
            }
        };
        let kind = match kind.as_str() {
            "slack" => DestinationKind::Slack,
            "alertmanager" => DestinationKind::Alertmanager,
            _ => DestinationKind::Webhook,
        };
        for delivery in &leased {
            self.attempt(delivery, kind, &secret).await?;
        }
        Ok(leased.len())
    }

    /// One delivery: build its message from the stored flags and the route version it was
    /// routed by, send it, record the outcome.
    async fn attempt(
        &self,
        d: &Leased,
        kind: DestinationKind,
        secret: &DestinationSecret,
    ) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        let definition: Option<serde_json::Value> = sqlx::query_scalar!(
            "SELECT definition FROM alert_route_versions
             WHERE route_id = $1 AND version = $2 AND definition IS NOT NULL
             ORDER BY seq DESC LIMIT 1",
            &d.route_id,
            d.route_version
        )
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
        let route = definition
            .and_then(|v| serde_json::from_value::<RouteDefinition>(v).ok())
            .and_then(|v| Route::compile(v).ok());
        let flags = flags::load(&mut conn, &d.flag_ids).await?;
        drop(conn);
        let outcome = match &route {
            // Flags deleted since (retention) leave nothing to say.
            _ if flags.is_empty() => Ok(204),
            None => Err(Failure::Status(0)),
            Some(route) => {
                let message = Message {
                    key: &d.key,
                    route,
                    group_key: &d.group_key,
                    flags: &flags,
                    suppressed: d.suppressed,
                    api_base_url: self.settings.api_base_url.as_deref(),
                };
                self.send(kind, secret, &message).await
            }
        };
        self.record(d, kind, outcome).await
    }

    async fn send(
        &self,
        kind: DestinationKind,
        secret: &DestinationSecret,
        message: &Message<'_>,
    ) -> Result<u16, Failure> {
        let (url, body) = match kind {
            DestinationKind::Webhook => (secret.url.clone(), message.webhook()),
            DestinationKind::Slack => (secret.url.clone(), message.slack()),
            DestinationKind::Alertmanager => (
                format!("{}/api/v2/alerts", secret.url.trim_end_matches('/')),
                message.alertmanager(),
            ),
        };
        let body = serde_json::to_vec(&body).map_err(|e| Failure::Network(e.to_string()))?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", message.key);
        if kind == DestinationKind::Webhook {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            request = request.header("X-Flagstream-Timestamp", now.to_string());
            if let Some(key) = &secret.signing_secret {
                request = request.header(
                    "X-Flagstream-Signature",
                    signature(key.as_bytes(), now, &body),
                );
            }
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
            Ok(response) => Err(Failure::Status(response.status().as_u16())),
            Err(e) => Err(Failure::Network(e.without_url().to_string())),
        }
    }

    async fn record(
        &self,
        d: &Leased,
        kind: DestinationKind,
        outcome: Result<u16, Failure>,
    ) -> Result<(), Error> {
        let kind_label = kind.as_str();
        let failure = match outcome {
            Ok(status) => {
                let latency: Option<i64> = sqlx::query_scalar!(
                    "WITH s AS (
                         UPDATE alert_deliveries SET status = 'sent', sent_at = now(),
                                lease_until = NULL, last_status = $2, last_error = NULL,
                                latency_ms = (extract(epoch FROM now() - flagged_at) * 1000)::bigint
                         WHERE id = $1 RETURNING id, latency_ms
                     ), g AS (
                         UPDATE alert_groups SET last_sent_at = now(), open_delivery = NULL
                         WHERE open_delivery IN (SELECT id FROM s)
                     )
                     SELECT latency_ms FROM s",
                    d.id,
                    i32::from(status)
                )
                .fetch_optional(self.pool)
                .await?
                .flatten();
                self.metrics
                    .alerts_sent
                    .get_or_create(&vec![("kind", kind_label.to_owned())])
                    .inc();
                if let Some(ms) = latency {
                    self.metrics
                        .alert_delivery_seconds
                        .get_or_create(&vec![("kind", kind_label.to_owned())])
                        .observe(ms as f64 / 1000.0);
                }
                return Ok(());
            }
            Err(failure) => failure,
        };
        let (reason, status, error) = match &failure {
            Failure::Status(0) => ("rejected", None, "its route version is gone".to_owned()),
            Failure::Status(s) if failure.permanent() => {
                ("rejected", Some(*s), format!("HTTP {s}"))
            }
            Failure::Status(s) => ("status", Some(*s), format!("HTTP {s}")),
            Failure::Network(e) => ("network", None, e.clone()),
        };
        self.metrics
            .alert(&self.metrics.alerts_failed, kind_label, reason);
        let exhausted = u32::try_from(d.attempts).unwrap_or(u32::MAX) >= self.settings.max_attempts;
        if reason == "rejected" || exhausted {
            if exhausted {
                self.metrics
                    .alert(&self.metrics.alerts_failed, kind_label, "gave_up");
            }
            tracing::warn!(delivery = d.id, attempts = d.attempts, %error, "alert delivery failed for good");
            sqlx::query!(
                "WITH f AS (
                     UPDATE alert_deliveries SET status = 'failed', lease_until = NULL,
                            last_status = $2, last_error = $3
                     WHERE id = $1 RETURNING id
                 )
                 UPDATE alert_groups SET open_delivery = NULL
                 WHERE open_delivery IN (SELECT id FROM f)",
                d.id,
                status.map(i32::from),
                &error
            )
            .execute(self.pool)
            .await?;
            return Ok(());
        }
        let wait = self.backoff(d.attempts);
        tracing::info!(delivery = d.id, attempts = d.attempts, %error, retry_in = ?wait, "alert delivery failed; retrying");
        sqlx::query!(
            "UPDATE alert_deliveries SET lease_until = NULL, last_status = $2, last_error = $3,
                    next_attempt_at = now() + make_interval(secs => $4)
             WHERE id = $1",
            d.id,
            status.map(i32::from),
            &error,
            wait.as_secs_f64()
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// Gives leased deliveries back untried, to be taken again after `wait`.
    async fn release(&self, leased: &[Leased], wait: Duration) -> Result<(), Error> {
        sqlx::query!(
            "UPDATE alert_deliveries SET lease_until = NULL, attempts = attempts - 1,
                    next_attempt_at = now() + make_interval(secs => $2)
             WHERE id = ANY($1)",
            &leased.iter().map(|d| d.id).collect::<Vec<_>>(),
            wait.as_secs_f64()
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// Exponential in the attempts made, capped, with ±20 % jitter so deliveries failed
    /// together do not retry together.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let base = self.settings.retry_base.saturating_mul(1 << exponent);
        let capped = base.min(self.settings.retry_max);
        capped.mul_f64(0.8 + 0.4 * rand::random::<f64>())
    }
}
