use thiserror::Error;

/// Everything that can go wrong in the engine: an event that cannot be read, a rule that
/// cannot be compiled, or content that cannot be sealed or opened. Messages name the field or rule at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("event is not valid UTF-8: {0}")]
    NotUtf8(String),
    /// Deeper than the JSON parser's limit of 128 levels; no event needs as many.
    #[error("event nests arrays and objects too deeply: {0}")]
    TooDeep(String),
    /// An object names the same key twice. Parsers disagree on which value counts (most take
    /// the last, some the first), so the engine cannot know which one the model was sent.
    #[error("event repeats a key in one object: {0}")]
    DuplicateKey(String),
    #[error("event is not a JSON object")]
    NotObject,
    #[error("event is missing required field `{0}`")]
    MissingField(&'static str),
    #[error("event field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("event field `timestamp` is not a valid time: {0}")]
    InvalidTimestamp(String),
    #[error("rule `{rule_id}` is invalid: {reason}")]
    InvalidRule { rule_id: String, reason: String },
    #[error("rule pack is invalid: {0}")]
    InvalidPack(String),
    #[error("alert {0}")]
    InvalidAlertConfig(String),
    #[error("content key: {0}")]
    Key(String),
    #[error("content sealing: {0}")]
    Seal(String),
}

impl Error {
    /// A short, stable code for dead-letter rows and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotJson(_) => "not_json",
            Error::NotUtf8(_) => "not_utf8",
            Error::TooDeep(_) => "too_deep",
            Error::DuplicateKey(_) => "duplicate_key",
            Error::NotObject => "not_object",
            Error::MissingField(_) => "missing_field",
            Error::WrongType { .. } => "wrong_type",
            Error::InvalidTimestamp(_) => "invalid_timestamp",
            Error::InvalidRule { .. } => "invalid_rule",
            Error::InvalidPack(_) => "invalid_pack",
            Error::InvalidAlertConfig(_) => "invalid_alert_config",
            Error::Key(_) => "content_key",
            Error::Seal(_) => "content_seal",
        }
    }
}
