//! Rules as the security team writes them (JSON in the API, TOML in packs); compiled into a
//! [`crate::RuleSet`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// `shadow` rules are evaluated and their detections recorded, but they never add to the
/// score: the way to try a rule on live traffic before it can flag anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

/// Event fields a text rule can look at. `any` = prompt, system, response and tool_args.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Prompt,
    System,
    Response,
    ToolArgs,
    Headers,
    Model,
    Provider,
    SrcIp,
    User,
    Any,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Prompt => "prompt",
            Field::System => "system",
            Field::Response => "response",
            Field::ToolArgs => "tool_args",
            Field::Headers => "headers",
            Field::Model => "model",
            Field::Provider => "provider",
            Field::SrcIp => "src_ip",
            Field::User => "user",
            Field::Any => "any",
        }
    }

    /// The concrete fields `any` stands for.
    pub const CONTENT: [Field; 4] = [
        Field::Prompt,
        Field::System,
        Field::Response,
        Field::ToolArgs,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable identifier, e.g. `secret.aws` or `acme.project_names`.
    pub id: String,
    pub name: String,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default = "general")]
    pub category: String,
    pub severity: Severity,
    /// Added to the event's score when the rule matches (once per rule, however often).
    pub points: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub mode: Mode,
    /// Fields a text rule scans; empty means `any`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Field>,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    #[serde(default, skip_serializing_if = "Exceptions::is_empty")]
    pub exceptions: Exceptions,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// How the rule's text is matched; see [`Dialect`].
    #[serde(default, skip_serializing_if = "Dialect::is_native")]
    pub dialect: Dialect,
    #[serde(flatten)]
    pub kind: RuleKind,
}

/// How a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Flagstream's: normalized and decoded text, whole words, validated detectors.
    #[default]
    Native,
    /// FlagWise's, exactly: the raw text, keywords as lower-case substrings, regexes as
    /// Python's `re.search(…, re.IGNORECASE)`, model and provider names by lower-case
    /// equality. For teams switching over (the `flagwise-compat` pack).
    Flagwise,
}

impl Dialect {
    pub fn is_native(&self) -> bool {
        *self == Dialect::Native
    }

    pub fn is_flagwise(&self) -> bool {
        *self == Dialect::Flagwise
    }
}

/// The rule applies only to events matching every non-empty list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Model globs (`claude-3-opus*`), case-insensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Source networks, e.g. `10.0.0.0/8`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.providers.is_empty() && self.cidrs.is_empty()
    }
}

/// Matches to ignore: the matched text equal to a literal (case-insensitive), or fully
/// matching a regex. Per rule, and globally for a whole rule set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regexes: Vec<String>,
}

impl Exceptions {
    pub fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.regexes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// Any of the keywords.
    Keyword {
        keywords: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
        /// Match whole words only, so `secret` does not flag "secretary".
        #[serde(default = "yes")]
        whole_word: bool,
    },
    /// A Rust regex (linear time). Case-insensitive unless asked otherwise.
    Regex {
        pattern: String,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// Matches when the model is denied, or an allow list exists and the model is not on it.
    Model {
        #[serde(default)]
        allow: Vec<String>,
        #[serde(default)]
        deny: Vec<String>,
    },
    /// As `model`, for the provider.
    Provider {
        #[serde(default)]
        allow: Vec<String>,
        #[serde(default)]
        deny: Vec<String>,
    },
    /// Matches when `src_ip` is in one of the ranges.
    Cidr { ranges: Vec<String> },
    /// A numeric comparison; an event without the value does not match.
    Threshold { metric: Metric, op: Op, value: f64 },
    /// A built-in validated detector by id (`pii.credit_card`), or a family (`secret.*`).
    Detector { detector: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    TokensIn,
    TokensOut,
    TokensTotal,
    CostUsd,
    DurationMs,
    /// Characters in the prompt.
    PromptLength,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl Op {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Gt => left > right,
            Op::Gte => left >= right,
            Op::Lt => left < right,
            Op::Lte => left <= right,
            Op::Eq => (left - right).abs() < f64::EPSILON,
        }
    }
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn general() -> String {
    "general".to_owned()
}
