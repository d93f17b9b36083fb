//! Service plumbing shared by `flagstream-consumer` and `flagstream-api`, which never import
//! each other: log set-up and shutdown signals, the redacting [`Secret`], the `/metrics` and
//! `/health` listener, and (feature `test-support`) test databases.

pub mod metrics_server;
mod secret;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use secret::Secret;
pub use telemetry::LogFormat;
