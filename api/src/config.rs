use std::fmt;
use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

/// Flagstream API: the security team's view of flagged LLM traffic.
///
/// Environment variable names follow FlagWise where it has one.
#[derive(Debug, Clone, Parser)]
#[command(name = "flagstream-api", version)]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    /// Address to serve HTTP on.
    #[arg(long, env = "API_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Bearer token that grants read access to /api/v1 (at least 32 characters). There is no
    /// default: without it the API refuses to start. Replaced by users and API keys later.
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Secret,

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
