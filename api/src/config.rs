use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use flagstream_service::{LogFormat, Secret};

use crate::auth::Role;

/// Flagstream API: the security team's view of flagged LLM traffic.
///
/// Environment variable names follow FlagWise where it has one.
#[derive(Debug, Parser)]
#[command(name = "flagstream-api", version)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage users without the API, e.g. to create the first admin.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the role × endpoint matrix as a Markdown table.
    Routes,
    /// Apply the database migrations and exit: the deployment's one-shot migration step.
    Migrate(MigrateArgs),
    /// GET a URL and exit 0 on a 2xx answer: the container health check (the image has no
    /// shell or curl).
    Healthcheck {
        /// `http://host:port/path`.
        #[arg(default_value = "http://127.0.0.1:8000/health")]
        url: String,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only check that the schema is current; apply nothing (exit 1 if it is not).
    #[arg(long)]
    pub check: bool,
    /// With --check: keep checking this long for the schema to become current (an init
    /// container waiting for the migration job).
    #[arg(long, default_value_t = 0)]
    pub wait_secs: u64,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (or reset an existing user's password and role). The password is read
    /// from the first line of stdin unless --password-env names a variable holding it.
    Create(CreateUser),
}

#[derive(Debug, Args)]
pub struct CreateUser {
    #[arg(long)]
    pub username: String,
    #[arg(long, value_enum)]
    pub role: Role,
    /// Name of an environment variable that holds the password.
    #[arg(long)]
    pub password_env: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL connection URL (required to serve or manage users).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Address to serve HTTP on.
    #[arg(long, env = "API_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Address of the Prometheus /metrics endpoint (kept off the API port).
    #[arg(long, env = "API_METRICS_ADDR", default_value = "127.0.0.1:9092")]
    pub metrics_addr: SocketAddr,

    /// HS256 signing secret for login tokens, at least 32 bytes. Not needed when
    /// JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE (Ed25519 PEM) are set.
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    pub jwt_secret_key: Option<Secret>,

    /// Ed25519 private key (PKCS#8 PEM) that signs login tokens (EdDSA).
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,

    /// Ed25519 public key (PEM) that verifies login tokens.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Lifetime of a login token, in seconds.
    #[arg(long, env = "JWT_EXPIRATION_SECS", default_value_t = 900)]
    pub jwt_expiration_secs: u64,

    /// `iss` claim of issued tokens, required on presented ones.
    #[arg(long, env = "JWT_ISSUER", default_value = "flagstream")]
    pub jwt_issuer: String,

    /// `aud` claim of issued tokens, required on presented ones.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "flagstream-api")]
    pub jwt_audience: String,

    /// Creates this admin at start-up when the database has no users yet.
    #[arg(long, env = "BOOTSTRAP_ADMIN_USERNAME")]
    pub bootstrap_admin_username: Option<String>,

    /// Password of the bootstrap admin (at least 12 characters).
    #[arg(long, env = "BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<Secret>,

    /// 32-byte content key, base64-encoded, to reveal content the consumer sealed.
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<Secret>,

    /// Content keyring, `id:base64key,…` (the consumer's ENCRYPTION_KEYS). Overrides
    /// ENCRYPTION_KEY.
    #[arg(long, env = "ENCRYPTION_KEYS", hide_env_values = true)]
    pub encryption_keys: Option<Secret>,

    /// Base URL of this API as responders reach it (`https://flagstream.example.com`); alert
    /// messages link each flag under it. Unset: messages carry no links.
    #[arg(long, env = "ALERT_API_BASE_URL")]
    pub alert_api_base_url: Option<String>,

    /// Browser origins allowed to call the API (comma-separated). Empty: no CORS.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// Requests running longer than this are cut off with 408 (exports are exempt).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Time limit of one search count, text search, stats or export-page query, in
    /// seconds (PostgreSQL's statement_timeout; other queries get REQUEST_TIMEOUT_SECS).
    #[arg(long, env = "QUERY_TIMEOUT_SECS", default_value_t = 10)]
    pub query_timeout_secs: u64,

    /// Longest time range of one stats request, in days.
    #[arg(long, env = "STATS_MAX_RANGE_DAYS", default_value_t = 400)]
    pub stats_max_range_days: u32,

    /// Rule compilations and dry-runs that may run at once (each takes a core).
    #[arg(long, env = "COMPILE_JOBS", default_value_t = 1)]
    pub compile_jobs: usize,

    /// Requests per minute from one client address, on every endpoint; 0: no limit.
    /// Behind a proxy every client shares its address, so size this for the proxy.
    #[arg(long, env = "RATE_LIMIT_PER_IP", default_value_t = 1200)]
    pub rate_limit_per_ip: u32,

    /// Requests per minute with one credential (API key or user); 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_CREDENTIAL", default_value_t = 600)]
    pub rate_limit_per_credential: u32,

    /// Failed logins per username from one client address within LOGIN_WINDOW_SECS before
    /// that address is locked out of that username (15 s, doubling with each failure).
    #[arg(long, env = "LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Login attempts per client IP within LOGIN_WINDOW_SECS.
    #[arg(long, env = "LOGIN_MAX_ATTEMPTS_PER_IP", default_value_t = 30)]
    pub login_max_attempts_per_ip: u32,

    /// Window of the login limits, in seconds.
    #[arg(long, env = "LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,

    /// How long stats responses are cached, in seconds.
    #[arg(long, env = "STATS_CACHE_SECS", default_value_t = 10)]
    pub stats_cache_secs: u64,

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
