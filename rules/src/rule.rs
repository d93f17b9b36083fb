//! Rules as the security team writes them; compiled into a [`crate::RuleSet`].

use serde::{Deserialize, Serialize};

use crate::Error;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    /// Added to the event's score when the rule matches (once per rule, however often).
    pub points: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(flatten)]
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    /// Any of the keywords, in the prompt or the response.
    Keyword {
        keywords: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
        /// Match whole words only, so `secret` does not flag "secretary".
        #[serde(default = "yes")]
        whole_word: bool,
    },
}

fn yes() -> bool {
    true
}

/// Longest keyword accepted; longer ones are almost certainly pasted by mistake.
pub(crate) const MAX_KEYWORD_LEN: usize = 1024;

impl Rule {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidRule {
            rule_id: self.id.clone(),
            reason,
        };
        if self.id.trim().is_empty() {
            return Err(invalid("id is empty".into()));
        }
        match &self.kind {
            RuleKind::Keyword { keywords, .. } => {
                if keywords.is_empty() {
                    return Err(invalid("keyword list is empty".into()));
                }
                if let Some(k) = keywords.iter().find(|k| k.is_empty()) {
                    return Err(invalid(format!("keyword {k:?} is empty")));
                }
                if let Some(k) = keywords.iter().find(|k| k.len() > MAX_KEYWORD_LEN) {
                    return Err(invalid(format!(
                        "keyword of {} bytes exceeds {MAX_KEYWORD_LEN}",
                        k.len()
                    )));
                }
            }
        }
        Ok(())
    }
}
