//! Rules live in PostgreSQL. The consumer seeds them from a built-in pack on first start,
//! compiles what is stored, and swaps in a new rule set when `rules_changed` is notified
//! (or, should a notification be lost, when a periodic check sees a new version).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flagstream_rules::{Event, Pack, Rule, RuleSet};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::Error;

/// Inserts the pack's rules unless rules were ever stored: deleting every rule is a choice
/// the seed must not undo. Serialized by an advisory lock so two consumers seed once.
pub async fn seed(pool: &PgPool, pack: &str) -> Result<u64, Error> {
    let pack = Pack::builtin(pack)?;
    let mut tx = pool.begin().await?;
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('flagstream.rules.seed'))")
        .execute(&mut *tx)
        .await?;
    let ever = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM rule_versions) AS "ever!""#)
        .fetch_one(&mut *tx)
        .await?;
    if ever {
        return Ok(0);
    }
    let mut ids = Vec::new();
    let mut definitions = Vec::new();
    for rule in &pack.rules {
        ids.push(rule.id.as_str());
        definitions.push(serde_json::to_value(rule).map_err(|e| Error::Config(e.to_string()))?);
    }
    let seeded = sqlx::query!(
        "INSERT INTO rules (id, definition, updated_by)
         SELECT id, d, $3 FROM UNNEST($1::text[], $2::jsonb[]) AS x(id, d)",
        &ids as &[&str],
        &definitions,
        format!("pack:{}@{}", pack.name, pack.version)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    tracing::info!(pack = %pack.name, rules = seeded, "seeded rules");
    Ok(seeded)
}

/// The stored rules compiled, those that were skipped with their reasons, and what each
/// good rule costs alone.
pub struct Loaded {
    pub set: RuleSet,
    pub rejected: Vec<(String, String)>,
    pub costs: Vec<(String, f64)>,
}

/// Prose with the words real prompts are full of (and a few a rule looks for), 2 KB, the
/// sample each rule's cost is measured on.
const COST_SAMPLE_SENTENCE: &str = "Please review the system design notes above and ignore \
    the typo in the second paragraph; the API key rotation policy, the password reset flow \
    and the token budget for each prompt are described in the instructions below. ";

fn cost_sample() -> Option<Event> {
    let prompt = COST_SAMPLE_SENTENCE.repeat(2048 / COST_SAMPLE_SENTENCE.len() + 1);
    let event = serde_json::json!({
        "id": "cost-sample", "timestamp": "2026-01-01T00:00:00Z", "src_ip": "10.0.0.1", "provider": "openai",
        "model": "gpt-4o", "prompt": &prompt[..2048], "response": "",
    });
    Event::parse(event.to_string().as_bytes(), None).ok()
}

/// The fastest of a few evaluations of the sample by a set holding one rule: stable enough
/// to spot a rule that costs ten times the others, cheap enough for every reload.
fn cost(set: &RuleSet, sample: &Event) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(set.evaluate(sample));
            started.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Reads every stored rule and the rule-set version in one snapshot and compiles them. A
/// rule that does not parse or compile is skipped, never fatal: one bad edit must not stop
/// the scanning of all traffic.
pub async fn load(pool: &PgPool, threshold: u32) -> Result<Loaded, Error> {
    let (version, rows): (i64, Vec<(String, serde_json::Value)>) = {
        let row = sqlx::query!(
            r#"SELECT (SELECT coalesce(max(seq), 0) FROM rule_versions) AS "version!",
                      coalesce((SELECT json_agg(json_build_array(id, definition) ORDER BY id)
                                FROM rules), '[]') AS "rules!""#
        )
        .fetch_one(pool)
        .await?;
        (
            row.version,
            serde_json::from_value(row.rules).map_err(|e| Error::Config(e.to_string()))?,
        )
    };
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    let mut costs = Vec::new();
    let sample = cost_sample();
    for (id, definition) in rows {
        let rule = match serde_json::from_value::<Rule>(definition) {
            Ok(rule) if rule.id == id => rule,
            Ok(rule) => {
                rejected.push((id, format!("definition names another id `{}`", rule.id)));
                continue;
            }
            Err(e) => {
                rejected.push((id, e.to_string()));
                continue;
            }
        };
        match RuleSet::build(vec![rule.clone()]) {
            Ok(alone) => {
                if let Some(sample) = &sample {
                    costs.push((id, cost(&alone, sample)));
                }
                good.push(rule);
            }
            Err(e) => rejected.push((id, e.to_string())),
        }
    }
    let set = RuleSet::build(good)?
        .with_threshold(threshold)
        .with_version(u64::try_from(version).unwrap_or(0));
    Ok(Loaded {
        set,
        rejected,
        costs,
    })
}

/// Loads the rules, reports what was skipped and publishes the set.
pub async fn reload(
    pool: &PgPool,
    threshold: u32,
    metrics: &Metrics,
    publish: &watch::Sender<Arc<RuleSet>>,
) -> Result<(), Error> {
    let loaded = load(pool, threshold).await?;
    for (id, reason) in &loaded.rejected {
        tracing::error!(rule = %id, %reason, "rule skipped: it does not compile");
    }
    let version = loaded.set.version();
    metrics
        .rule_set_version
        .set(i64::try_from(version).unwrap_or(i64::MAX));
    metrics.rules_active.set(loaded.set.rules().len() as i64);
    metrics.rules_rejected.set(loaded.rejected.len() as i64);
    metrics.set_rule_costs(loaded.costs);
    tracing::info!(
        version,
        rules = loaded.set.rules().len(),
        rejected = loaded.rejected.len(),
        "rule set loaded"
    );
    publish.send_replace(Arc::new(loaded.set));
    Ok(())
}

/// Subscribes to `rules_changed`. Called before the first load, so a change committed
/// between that load and the watcher's start is not missed.
pub async fn listen(pool: &PgPool) -> Option<PgListener> {
    let subscribed = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen("rules_changed").await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match subscribed.await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for rule changes; polling");
            None
        }
    }
}

/// Reloads on every `rules_changed` notification, and every `poll` when the version moved.
pub async fn watch(
    pool: PgPool,
    mut listener: Option<PgListener>,
    threshold: u32,
    poll: Duration,
    metrics: Arc<Metrics>,
    publish: watch::Sender<Arc<RuleSet>>,
    shutdown: CancellationToken,
) {
    loop {
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let changed = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        let notified = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = changed => match received {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "rule change listener failed; reconnecting");
                    listener = None;
                    false
                }
            },
            _ = tokio::time::sleep(poll) => false,
        };
        let current = publish.borrow().version();
        let stale = notified || {
            let stored =
                sqlx::query_scalar!(r#"SELECT coalesce(max(seq), 0) AS "seq!" FROM rule_versions"#)
                    .fetch_one(&pool)
                    .await;
            stored.is_ok_and(|v| u64::try_from(v).unwrap_or(0) != current)
        };
        if stale {
            if let Err(e) = reload(&pool, threshold, &metrics, &publish).await {
                metrics.error("rules");
                tracing::warn!(error = %e, "reloading rules failed; keeping the current set");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_good_rule_has_a_cost_measured_on_a_2kb_event() {
        let sample = cost_sample().expect("the sample parses");
        assert_eq!(sample.prompt.len(), 2048);
        let set = RuleSet::build(Pack::builtin("default").unwrap().rules).unwrap();
        assert!(cost(&set, &sample) > 0.0);
    }
}
