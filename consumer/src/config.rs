use std::fmt;
use std::time::Duration;

use clap::{Parser, ValueEnum};

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

    /// Longest time a batch waits to fill before it is stored anyway, in milliseconds.
    #[arg(long, env = "BATCH_TIMEOUT_MS", default_value_t = 200)]
    pub batch_timeout_ms: u64,

    /// Largest raw message kept in a dead letter, in bytes; longer ones are truncated.
    #[arg(long, env = "DEAD_LETTER_MAX_BYTES", default_value_t = 65536)]
    pub dead_letter_max_bytes: usize,

    /// Built-in rule pack to evaluate events with.
    #[arg(long, env = "RULES_PACK", default_value = "default")]
    pub rules_pack: String,

    /// Apply database migrations at start-up (serialized by a database lock).
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log output format.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    pub fn batch_timeout(&self) -> Duration {
        Duration::from_millis(self.batch_timeout_ms)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A value that must never reach a log line: it prints as `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
