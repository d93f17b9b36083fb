//! What the engine says about one event.

use serde::{Deserialize, Serialize};

use crate::text::Encoding;
use crate::{Field, Severity};

/// One piece of evidence: which rule (at which version) matched where. The excerpt is
/// redacted so a stored detection never carries the full matched text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    pub rule_id: String,
    pub rule_version: u32,
    pub field: Field,
    /// Byte range in the original field text; for a match in decoded text, the range of the
    /// encoded run it was decoded from.
    pub start: usize,
    pub end: usize,
    pub excerpt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_from: Option<Encoding>,
    /// The built-in detector that found it (`secret.github_token`), for detector rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// From a shadow-mode rule: recorded, never scored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Σ points of the matching enforce-mode rules (each rule once), capped at 100.
    pub score: u32,
    /// The highest severity among matching enforce-mode rules; `None` when none matched.
    pub severity: Option<Severity>,
    pub flagged: bool,
    pub detections: Vec<Detection>,
}

/// Characters of context kept on each side of a match in an excerpt.
const CONTEXT_CHARS: usize = 16;
/// Characters of a match left visible; the rest is masked.
const VISIBLE_CHARS: usize = 2;

/// `…context ab******** context…`: a little context, the first characters of the match and
/// one `*` per further character. Every span in `mask` (the other detections in the field)
/// that reaches into the context is masked too, so context never leaks a neighbouring secret.
pub(crate) fn excerpt(text: &str, start: usize, end: usize, mask: &[(usize, usize)]) -> String {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(CONTEXT_CHARS - 1)
        .map_or(0, |(i, _)| i);
    let to = text[end..]
        .char_indices()
        .nth(CONTEXT_CHARS)
        .map_or(text.len(), |(i, _)| end + i);
    let mut out = String::with_capacity(to - from + 8);
    if from > 0 {
        out.push('…');
    }
    let mut visible_left = 0;
    for (offset, c) in text[from..to].char_indices() {
        let i = from + offset;
        let in_match = i >= start && i < end;
        if in_match && i == start {
            visible_left = VISIBLE_CHARS;
        }
        let masked = mask.iter().any(|&(s, e)| i >= s && i < e);
        let shown = if in_match && visible_left > 0 {
            visible_left -= 1;
            c
        } else if in_match || masked {
            '*'
        } else {
            c
        };
        // Analysts read excerpts; control characters (a NUL, a terminal escape) must not
        // render, also not as the visible start of a match.
        out.push(if shown.is_control() { ' ' } else { shown });
    }
    if to < text.len() {
        out.push('…');
    }
    out
}
