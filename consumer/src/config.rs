use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
pub use flagstream_service::{LogFormat, Secret};

/// Flagstream consumer: reads LLM traffic events from Kafka, evaluates them against the
/// detection rules and stores flags and dead letters in PostgreSQL.
///
/// Environment variable names follow FlagWise where it has one. To evaluate a file of
/// events offline instead, run `flagstream-consumer scan --help`.
#[derive(Debug, Clone, Parser)]
#[command(name = "flagstream-consumer", version)]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,

    /// Topic the gateways publish LLM events to.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "llm-traffic-logs")]
    pub kafka_topic: String,

    /// Consumer group; consumers sharing it split the topic's partitions.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "flagstream")]
    pub kafka_group_id: String,

    /// Where a group with no committed offset starts. `earliest` so a new deployment
    /// does not silently skip the backlog (FlagWise defaults to `latest`).
    #[arg(long, env = "KAFKA_AUTO_OFFSET_RESET", default_value = "earliest")]
    pub kafka_auto_offset_reset: OffsetReset,

    /// Extra librdkafka properties as key=value (SASL, TLS, timeouts, …); repeatable, or
    /// comma-separated in the environment. Applied after Flagstream's own settings.
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_kafka_option)]
    pub kafka_options: Vec<KafkaOption>,

    /// Most events stored in one database transaction.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,

    /// Most message bytes in one batch: a batch is closed early at this size, so what the
    /// consumer holds stays bounded however large the messages are.
    #[arg(long, env = "BATCH_MAX_BYTES", default_value_t = 16 << 20)]
    pub batch_max_bytes: usize,

    /// Largest message evaluated, in bytes. A larger one is dead-lettered as `too_large`
    /// with its first DEAD_LETTER_MAX_BYTES bytes, and only those are copied out of the
    /// Kafka client.
    #[arg(long, env = "MAX_EVENT_BYTES", default_value_t = 4 << 20)]
    pub max_event_bytes: usize,

    /// Longest time a batch waits to fill before it is stored anyway, in milliseconds.
    #[arg(long, env = "BATCH_TIMEOUT_MS", default_value_t = 200)]
    pub batch_timeout_ms: u64,

    /// Threads a batch's parsing, rules and sealing are split across; 0 means one per core.
    #[arg(long, env = "EVAL_WORKERS", default_value_t = 0)]
    pub eval_workers: usize,

    /// Largest raw message kept in a dead letter, in bytes; longer ones are truncated.
    #[arg(long, env = "DEAD_LETTER_MAX_BYTES", default_value_t = 65536)]
    pub dead_letter_max_bytes: usize,

    /// Built-in rule pack stored as the rules on first start (rules then live in the
    /// database and are managed through the API).
    #[arg(long, env = "RULES_PACK", default_value = "default")]
    pub rules_pack: String,

    /// Events scoring at least this are flagged (1 = any match, as FlagWise).
    #[arg(long, env = "FLAG_THRESHOLD", default_value_t = 1)]
    pub flag_threshold: u32,

    /// How often to check for rule changes should a notification be missed, in seconds.
    #[arg(long, env = "RULES_POLL_INTERVAL_SECS", default_value_t = 30)]
    pub rules_poll_secs: u64,

    /// How a flagged event's prompt and response are kept: sealed with
    /// XChaCha20-Poly1305, redacted (detections masked), or not at all. Unflagged events'
    /// content is never stored.
    #[arg(long, env = "STORE_CONTENT", default_value = "encrypted")]
    pub store_content: StoreContent,

    /// 32-byte content key, base64-encoded.
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<Secret>,

    /// Content keyring for rotation, `id:base64key,…`: the first seals, all open.
    /// Overrides ENCRYPTION_KEY.
    #[arg(long, env = "ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<Secret>,

    /// Address of the Prometheus `/metrics` and `/health` endpoints.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9091")]
    pub metrics_addr: SocketAddr,

    /// Longest time a shutdown may take to finish its batch and leave the group, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// Apply database migrations at start-up (serialized by a database lock).
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Route stored flags to alert destinations from this consumer (every replica may; they
    /// share the work without sending anything twice).
    #[arg(long, env = "ALERTS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub alerts_enabled: bool,

    /// Base URL of the API, for the flag links in alerts (`https://flagstream.example.com`).
    #[arg(long, env = "ALERT_API_BASE_URL")]
    pub alert_api_base_url: Option<String>,

    /// Attempts per alert delivery before it is marked failed (an admin can resend it).
    #[arg(long, env = "ALERT_MAX_ATTEMPTS", default_value_t = 20)]
    pub alert_max_attempts: u32,

    /// First retry delay of a failed delivery, in milliseconds; doubles per attempt, ±20 %.
    #[arg(long, env = "ALERT_RETRY_BASE_MS", default_value_t = 1000)]
    pub alert_retry_base_ms: u64,

    /// Longest retry delay, in seconds.
    #[arg(long, env = "ALERT_RETRY_MAX_SECS", default_value_t = 600)]
    pub alert_retry_max_secs: u64,

    /// Time a destination has to answer one delivery, in seconds.
    #[arg(long, env = "ALERT_HTTP_TIMEOUT_SECS", default_value_t = 10)]
    pub alert_http_timeout_secs: u64,

    /// How often the dispatcher looks for new flags and due deliveries, in milliseconds.
    #[arg(long, env = "ALERT_POLL_MS", default_value_t = 500)]
    pub alert_poll_ms: u64,

    /// Backtest jobs this consumer runs at once (0: none; another replica may run them).
    #[arg(long, env = "BACKTEST_WORKERS", default_value_t = 1)]
    pub backtest_workers: usize,

    /// Most events per second one backtest reads, so live consumption keeps priority.
    #[arg(long, env = "BACKTEST_MAX_EVENTS_PER_SEC", default_value_t = 20_000)]
    pub backtest_max_events_per_sec: u32,

    /// Longest a backtest runs before it stops and reports what it scanned, in seconds.
    #[arg(long, env = "BACKTEST_MAX_SECONDS", default_value_t = 3600)]
    pub backtest_max_seconds: u64,

    /// Most events one backtest evaluates before it stops and reports what it scanned.
    #[arg(long, env = "BACKTEST_MAX_EVENTS", default_value_t = 50_000_000)]
    pub backtest_max_events: u64,

    /// Days a finished backtest's result is kept.
    #[arg(long, env = "BACKTEST_RETENTION_DAYS", default_value_t = 7)]
    pub backtest_retention_days: u32,

    /// How long a worker's claim on a job lasts without a checkpoint before another worker
    /// may take the job over (it resumes from the last checkpoint), in seconds.
    #[arg(long, env = "BACKTEST_LEASE_SECS", default_value_t = 30)]
    pub backtest_lease_secs: u64,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// `flagstream-consumer migrate`: apply the database migrations and exit.
#[derive(Debug, Clone, Parser)]
#[command(name = "flagstream-consumer migrate")]
pub struct MigrateArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,
    /// Only check that the schema is current; apply nothing (exit 1 if it is not).
    #[arg(long)]
    pub check: bool,
    /// With --check: keep checking this long for the schema to become current.
    #[arg(long, default_value_t = 0)]
    pub wait_secs: u64,
}

impl Config {
    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_timeout_ms)
    }

    pub fn eval_workers(&self) -> usize {
        match self.eval_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

    /// Adds `KAFKA_OPT_<PROPERTY>` variables as librdkafka properties
    /// (`KAFKA_OPT_SASL_PASSWORD` → `sasl.password`), after KAFKA_OPTIONS and the flags.
    pub fn with_kafka_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Config {
        for (name, value) in vars {
            if let Some(property) = name.strip_prefix("KAFKA_OPT_").filter(|p| !p.is_empty()) {
                self.kafka_options.push(KafkaOption {
                    key: property.to_ascii_lowercase().replace('_', "."),
                    value,
                });
            }
        }
        self
    }
}

/// A librdkafka property. Values may be credentials (`sasl.password`), so only the key is
/// ever printed.
#[derive(Clone)]
pub struct KafkaOption {
    pub key: String,
    pub value: String,
}

impl fmt::Debug for KafkaOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=[redacted]", self.key)
    }
}

fn parse_kafka_option(s: &str) -> Result<KafkaOption, String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok(KafkaOption {
            key: k.trim().to_owned(),
            value: v.trim().to_owned(),
        }),
        _ => Err("expected key=value".to_owned()),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

impl OffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        }
    }
}

/// How a flagged event's content is kept (`STORE_CONTENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreContent {
    Encrypted,
    Redacted,
    None,
}

impl StoreContent {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreContent::Encrypted => "encrypted",
            StoreContent::Redacted => "redacted",
            StoreContent::None => "none",
        }
    }
}
