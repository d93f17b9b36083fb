//! Alerting on stored flags: routes (which flags go where, grouped how), destinations
//! (webhook, Slack, Alertmanager) and the messages sent to them. Pure, like the rest of the
//! crate: the consumer's dispatcher does the I/O, the API's dry-run renders the same bytes.
//!
//! A message carries what a responder needs to act (flag ids and API links, score,
//! severity, rules with versions, model, provider, source, user, app and the detections'
//! redacted excerpts) and never prompt or response content: excerpts mask every match.

mod destination;
mod message;
mod route;

use std::net::IpAddr;

use serde::Deserialize;
use time::OffsetDateTime;

pub use destination::{signature, DestinationKind, DestinationSecret};
pub use message::{Message, MAX_FLAGS_PER_MESSAGE};
pub use route::{route, Matchers, Route, RouteDefinition, GROUP_FIELDS};

use crate::Severity;

/// A stored flag as alerting sees it: one row of the `alert_flags` view, which both the
/// consumer's dispatcher and the API's dry-run read, so they cannot load it differently.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertFlag {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub event_time: OffsetDateTime,
    pub score: u8,
    pub severity: Severity,
    pub categories: Vec<String>,
    pub model: String,
    pub provider: String,
    pub src_ip: IpAddr,
    pub user: Option<String>,
    pub app: Option<String>,
    pub detections: Vec<AlertDetection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertDetection {
    pub rule_id: String,
    pub rule_version: i32,
    pub field: String,
    /// Already redacted by the engine: never a full match.
    pub excerpt: String,
    pub shadow: bool,
}
