//! Flagstream's detection engine: LLM traffic events in, verdicts with evidence out.
//!
//! The crate does no I/O. Rules ([`Rule`]: keyword, regex, model, provider, cidr, threshold
//! and built-in validated detectors for PII, secrets, prompt injection and Unicode
//! smuggling) are compiled once into a [`RuleSet`], which is immutable and cheap to share.
//! Every [`Event`] is then normalized (provider bodies flattened into fields, invisible
//! characters stripped, bounded base64/hex/percent runs decoded) and evaluated into a
//! [`Verdict`]: a score, a severity, and [`Detection`]s with the field, the byte span in the
//! original text and a redacted excerpt.
//!
//! ```
//! use flagstream_rules::{Event, Pack, Rule, RuleSet};
//!
//! let rule: Rule = serde_json::from_str(r#"{
//!     "id": "acme.codenames", "name": "Project codenames", "severity": "high", "points": 40,
//!     "kind": "keyword", "keywords": ["falcon", "osprey"]
//! }"#).unwrap();
//! let rules = RuleSet::build(vec![rule])?;
//!
//! let event = Event::parse(
//!     br#"{"id": "req-1", "timestamp": 1767607200, "src_ip": "10.0.0.7",
//!          "provider": "openai", "model": "gpt-4o",
//!          "prompt": "Draft the Falcon launch plan, not the falconry one."}"#,
//!     None,
//! )?;
//! let verdict = rules.evaluate(&event);
//! assert!(verdict.flagged);
//! assert_eq!(verdict.score, 40);
//! // Whole words only: "falconry" is not a match.
//! assert_eq!(verdict.detections.len(), 1);
//! assert_eq!((verdict.detections[0].start, verdict.detections[0].end), (10, 16));
//! assert_eq!(verdict.detections[0].excerpt, "Draft the Fa**** launch plan, no…");
//!
//! // The built-in packs: `default` and `flagwise-compat`.
//! assert!(Pack::names().any(|n| n == "flagwise-compat"));
//! # Ok::<(), flagstream_rules::Error>(())
//! ```

pub mod alert;
pub mod backtest;
mod body;
mod condition;
pub mod content;
pub mod detector;
mod error;
mod event;
mod flagwise;
mod matcher;
mod pack;
mod rule;
mod ruleset;
mod text;
mod verdict;
mod wire;

pub use error::Error;
pub use event::{Event, Origin};
pub use matcher::detector_ids;
pub use pack::Pack;
pub use rule::{
    Conditions, Dialect, Exceptions, Field, Metric, Mode, Op, Rule, RuleKind, Severity,
};
pub use ruleset::RuleSet;
pub use text::Encoding;
pub use verdict::{Detection, Verdict};
