//! What the engine says about one event.

use serde::{Deserialize, Serialize};

use crate::Severity;

/// The part of an event a detection was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Prompt,
    Response,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Prompt => "prompt",
            Field::Response => "response",
        }
    }
}

/// One piece of evidence: which rule matched where. The excerpt is redacted so a stored
/// detection never carries the full matched text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub rule_id: String,
    pub field: Field,
    /// Byte range of the match in the original field text.
    pub start: usize,
    pub end: usize,
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Σ points of the matching rules (each rule once), capped at 100.
    pub score: u32,
    /// The highest severity among matching rules; `None` when nothing matched.
    pub severity: Option<Severity>,
    pub flagged: bool,
    pub detections: Vec<Detection>,
}

/// Characters of context kept on each side of a match in an excerpt.
const CONTEXT_CHARS: usize = 16;
/// Characters of the match itself left visible; the rest is masked.
const VISIBLE_CHARS: usize = 2;

/// `…context ab******** context…`: a little context, the first characters of the match, and
/// one `*` per further character.
pub(crate) fn redact(text: &str, start: usize, end: usize) -> String {
    let before: String = {
        let mut chars: Vec<char> = text[..start].chars().rev().take(CONTEXT_CHARS).collect();
        chars.reverse();
        chars.into_iter().collect()
    };
    let after: String = text[end..].chars().take(CONTEXT_CHARS).collect();
    let mut out = String::with_capacity(before.len() + (end - start) + after.len() + 8);
    if before.len() < start {
        out.push('…');
    }
    out.push_str(&before);
    for (i, c) in text[start..end].chars().enumerate() {
        out.push(if i < VISIBLE_CHARS { c } else { '*' });
    }
    out.push_str(&after);
    if end + after.len() < text.len() {
        out.push('…');
    }
    // Excerpts are shown to analysts, who should not see control characters rendered.
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
