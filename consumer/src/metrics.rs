//! The consumer's Prometheus metrics (served by `flagstream_service::metrics_server`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use flagstream_rules::alert::DestinationKind;

type Labels = Vec<(&'static str, String)>;

/// Every `errors_total` kind, exported as 0 from the start so a rate over them exists (and
/// dashboards and alerts see a series) before the first error.
const ERROR_KINDS: [&str; 4] = ["database", "kafka", "rules", "alerts"];

pub struct Metrics {
    registry: Registry,
    pub events: Counter,
    pub flagged: Counter,
    pub shadow_only: Counter,
    pub replayed: Counter,
    pub dead_letters: Family<Labels, Counter>,
    pub detections: Family<Labels, Counter>,
    pub errors: Family<Labels, Counter>,
    pub batch_size: Histogram,
    /// From the first message of a batch received to its PostgreSQL commit.
    pub batch_seconds: Histogram,
    pub eval_seconds: Histogram,
    pub db_write_seconds: Histogram,
    pub lag: Family<Labels, Gauge>,
    pub assigned_partitions: Gauge,
    pub rule_set_version: Gauge,
    pub rules_active: Gauge,
    pub rules_rejected: Gauge,
    pub last_commit: Gauge<f64, AtomicU64>,
    pub rule_cost: Family<Labels, Gauge<f64, AtomicU64>>,
    pub alerts_sent: Family<Labels, Counter>,
    pub alerts_failed: Family<Labels, Counter>,
    pub alerts_suppressed: Family<Labels, Counter>,
    /// From the flag's commit to the destination's 2xx.
    pub alert_delivery_seconds: Family<Labels, Histogram>,
    pub alert_outbox_depth: Gauge,
    pub alert_outbox_oldest: Gauge<f64, AtomicU64>,
}

/// Why an alert attempt failed: the destination answered non-2xx (retried), could not be
/// reached (retried), refused the message for good (a 4xx other than 408 and 429), or the
/// attempts ran out.
pub const ALERT_FAILURES: [&str; 4] = ["status", "network", "rejected", "gave_up"];
/// Why an alert was held back: folded into the group's next message (`repeat_interval`),
/// or postponed by the destination's rate limit (sent later).
pub const ALERT_SUPPRESSIONS: [&str; 2] = ["repeat_interval", "rate_limit"];

impl Metrics {
    pub fn new() -> Metrics {
        let seconds = || Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let mut m = Metrics {
            registry: Registry::with_prefix("flagstream"),
            events: Counter::default(),
            flagged: Counter::default(),
            shadow_only: Counter::default(),
            replayed: Counter::default(),
            dead_letters: Family::default(),
            detections: Family::default(),
            errors: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            // Finer buckets: this is the latency a benchmark reports percentiles of.
            batch_seconds: Histogram::new(exponential_buckets(0.0005, 1.25, 40)),
            eval_seconds: seconds(),
            db_write_seconds: seconds(),
            lag: Family::default(),
            assigned_partitions: Gauge::default(),
            rule_set_version: Gauge::default(),
            rules_active: Gauge::default(),
            rules_rejected: Gauge::default(),
            last_commit: Gauge::default(),
            rule_cost: Family::default(),
            alerts_sent: Family::default(),
            alerts_failed: Family::default(),
            alerts_suppressed: Family::default(),
            alert_delivery_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.05, 2.0, 14))
            }),
            alert_outbox_depth: Gauge::default(),
            alert_outbox_oldest: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "events_consumed",
            "Events parsed and evaluated",
            m.events.clone(),
        );
        r.register(
            "events_flagged",
            "Events stored as flags",
            m.flagged.clone(),
        );
        r.register(
            "events_shadow_only",
            "Events stored only for shadow-mode rules' hits: triageable, never alerted on",
            m.shadow_only.clone(),
        );
        r.register(
            "events_replayed",
            "Messages skipped because they were already stored",
            m.replayed.clone(),
        );
        r.register(
            "dead_letters",
            "Messages stored as dead letters, by reason",
            m.dead_letters.clone(),
        );
        r.register(
            "detections",
            "Detections stored, by rule",
            m.detections.clone(),
        );
        r.register("errors", "Errors, by kind", m.errors.clone());
        r.register("batch_size", "Messages per batch", m.batch_size.clone());
        r.register(
            "batch_seconds",
            "Receipt of a batch's first message to its database commit",
            m.batch_seconds.clone(),
        );
        r.register(
            "rule_evaluation_seconds",
            "Parsing and rule evaluation time per batch",
            m.eval_seconds.clone(),
        );
        r.register(
            "db_write_seconds",
            "Database transaction time per batch",
            m.db_write_seconds.clone(),
        );
        r.register(
            "consumer_lag",
            "Messages behind the partition's high watermark",
            m.lag.clone(),
        );
        r.register(
            "assigned_partitions",
            "Partitions this member owns; 0 means it consumes nothing",
            m.assigned_partitions.clone(),
        );
        r.register(
            "rule_set_version",
            "Version of the rule set in use",
            m.rule_set_version.clone(),
        );
        r.register(
            "rules_active",
            "Rules compiled into the rule set in use",
            m.rules_active.clone(),
        );
        r.register(
            "rules_rejected",
            "Stored rules that failed to compile and were skipped",
            m.rules_rejected.clone(),
        );
        r.register(
            "last_commit_timestamp_seconds",
            "Unix time of the last batch commit",
            m.last_commit.clone(),
        );
        r.register(
            "rule_cost_seconds",
            "Evaluation time of each rule alone per 2 KB sample event, measured at load",
            m.rule_cost.clone(),
        );
        r.register(
            "alerts_sent",
            "Alert deliveries a destination accepted (2xx), by destination kind",
            m.alerts_sent.clone(),
        );
        r.register(
            "alerts_failed",
            "Failed alert delivery attempts, by destination kind and reason",
            m.alerts_failed.clone(),
        );
        r.register(
            "alerts_suppressed",
            "Alerts held back, by destination kind and reason",
            m.alerts_suppressed.clone(),
        );
        r.register(
            "alert_delivery_seconds",
            "Flag commit to the destination's 2xx, by destination kind",
            m.alert_delivery_seconds.clone(),
        );
        r.register(
            "alert_outbox_depth",
            "Flags waiting to be routed plus deliveries waiting to be sent",
            m.alert_outbox_depth.clone(),
        );
        r.register(
            "alert_outbox_oldest_seconds",
            "Age of the oldest flag or delivery waiting",
            m.alert_outbox_oldest.clone(),
        );
        // Every label value exported from the start, so rates exist before the first alert.
        for kind in DestinationKind::ALL.map(DestinationKind::as_str) {
            let k = || ("kind", kind.to_owned());
            m.alerts_sent.get_or_create(&vec![k()]).inc_by(0);
            let _ = m.alert_delivery_seconds.get_or_create(&vec![k()]);
            for reason in ALERT_FAILURES {
                m.alerts_failed
                    .get_or_create(&vec![k(), ("reason", reason.to_owned())])
                    .inc_by(0);
            }
            for reason in ALERT_SUPPRESSIONS {
                m.alerts_suppressed
                    .get_or_create(&vec![k(), ("reason", reason.to_owned())])
                    .inc_by(0);
            }
        }
        for kind in ERROR_KINDS {
            m.errors
                .get_or_create(&vec![("kind", kind.to_owned())])
                .inc_by(0);
        }
        m
    }

    /// Replaces the per-rule costs, dropping rules that are gone.
    pub fn set_rule_costs(&self, costs: Vec<(String, f64)>) {
        self.rule_cost.clear();
        for (rule, seconds) in costs {
            self.rule_cost
                .get_or_create(&vec![("rule", rule)])
                .set(seconds);
        }
    }

    pub fn alert(&self, family: &Family<Labels, Counter>, kind: &str, reason: &'static str) {
        family
            .get_or_create(&vec![
                ("kind", kind.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    pub fn error(&self, kind: &'static str) {
        debug_assert!(ERROR_KINDS.contains(&kind), "unlisted error kind {kind}");
        self.errors
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&partition_labels(topic, partition))
            .set(lag);
    }

    pub fn clear_lag(&self, topic: &str, partition: i32) {
        self.lag.remove(&partition_labels(topic, partition));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn partition_labels(topic: &str, partition: i32) -> Labels {
    vec![
        ("topic", topic.to_owned()),
        ("partition", partition.to_string()),
    ]
}
