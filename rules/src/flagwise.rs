//! FlagWise's matching semantics, for rules with `dialect = "flagwise"` (the
//! `flagwise-compat` pack), so a team switching over gets exactly the flags it had.
//!
//! FlagWise (Python) tests a rule against the raw prompt: a keyword is `kw.lower() in
//! prompt.lower()`, a regex is `re.search(pattern, prompt, re.IGNORECASE)`, a model is
//! `model.lower()` equal to a listed name. So here: no normalization (no stripping of
//! invisible characters, no decoding), keywords as lower-case substrings, regexes with
//! Python's character classes, models by lower-case equality.
//!
//! Regexes run on one of two compiled forms:
//! - ASCII text (almost all traffic): an ASCII-only regex, where `\b`, `\w`, `\d` and case
//!   folding already mean what they mean in Python; only `\s` differs (Python's includes
//!   the separators U+001C–U+001F), and the translation adds them. The lazy DFA and the
//!   literal prefilters work here, unlike with Unicode word boundaries.
//! - Other text: a Unicode regex run on a copy that settles, before matching, the two
//!   places where Python and Rust disagree. Case: Python folds by simple lower-casing plus a
//!   few equivalences (`İ` and `ı` match `i`, `ſ` matches `s`), Rust by Unicode case
//!   folding, so each character is replaced by its Python fold. Words: a character Python
//!   and Rust classify differently as a word character (combining marks, connector
//!   punctuation other than `_`, numerics such as `²`) is replaced by a stand-in both
//!   classify as Python does and no class of these rules matches, so `\b` decides as in
//!   Python. Spans are mapped back to the original text.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use crate::matcher::{Admit, Found, REGEX_SIZE_LIMIT};
use crate::{Error, Rule, RuleKind};

#[derive(Debug, Clone)]
struct PyRegex {
    rule: usize,
    ascii: Option<regex::bytes::Regex>,
    unicode: Regex,
}

/// The matchers of a rule set's FlagWise-dialect keyword and regex rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlagwiseMatchers {
    keywords: Option<AhoCorasick>,
    /// The rule of each keyword needle.
    keyword_rules: Vec<usize>,
    /// The keywords again, one substring finder each, when there are few: on a lower-cased
    /// copy of an ASCII text they rule out a clean text several times faster than the
    /// case-insensitive automaton, which gets no SIMD prefilter.
    keyword_finders: Vec<memchr::memmem::Finder<'static>>,
    regexes: Vec<PyRegex>,
}

/// Up to this many keywords, the substring finders run first; past it the automaton alone.
const FINDERS_MAX: usize = 16;

fn invalid(c: &Rule, reason: String) -> Error {
    Error::InvalidRule {
        rule_id: c.id.clone(),
        reason,
    }
}

impl FlagwiseMatchers {
    pub fn build(rules: &[&Rule]) -> Result<FlagwiseMatchers, Error> {
        let mut m = FlagwiseMatchers::default();
        let mut needles = Vec::new();
        for (index, &c) in rules.iter().enumerate() {
            if !c.dialect.is_flagwise() {
                continue;
            }
            match &c.kind {
                RuleKind::Keyword { keywords, .. } => {
                    for k in keywords {
                        if k.is_empty() {
                            return Err(invalid(c, "empty keyword".into()));
                        }
                        needles.push(k.to_lowercase());
                        m.keyword_rules.push(index);
                    }
                }
                RuleKind::Regex { pattern, .. } => {
                    let python = translate(pattern);
                    let build = |source: String| {
                        regex::RegexBuilder::new(&source)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| invalid(c, format!("regex does not compile: {e}")))
                    };
                    let unicode = build(format!("(?i){python}"))?;
                    // A pattern with non-ASCII literals has no ASCII-only form; it then runs
                    // in Unicode mode on ASCII text too, which is also exact there.
                    let ascii = regex::bytes::RegexBuilder::new(&format!("(?i-u){python}"))
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .ok();
                    m.regexes.push(PyRegex {
                        rule: index,
                        ascii,
                        unicode,
                    });
                }
                _ => {}
            }
        }
        if needles.len() <= FINDERS_MAX {
            m.keyword_finders = needles
                .iter()
                .map(|n| memchr::memmem::Finder::new(n.as_bytes()).into_owned())
                .collect();
        }
        if !needles.is_empty() {
            m.keywords = Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(&needles)
                    .map_err(|e| Error::InvalidPack(format!("keyword automaton: {e}")))?,
            );
        }
        Ok(m)
    }

    /// False when no keyword occurs in the ASCII `text`, as far as the finders can tell
    /// (true without finders).
    fn may_contain_keyword(&self, text: &str) -> bool {
        if self.keyword_finders.is_empty() {
            return true;
        }
        let lower = text.to_ascii_lowercase();
        self.keyword_finders
            .iter()
            .any(|f| f.find(lower.as_bytes()).is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.keywords.is_none() && self.regexes.is_empty()
    }

    /// Appends the FlagWise-dialect matches in `text` (the raw field text) to `out`.
    pub fn find(&self, admit: &impl Admit, text: &str, out: &mut Vec<Found>) {
        let keep = |rule: usize, s: usize, e: usize| admit.keeps(rule, &text[s..e]);
        let ascii = text.is_ascii();
        if let Some(ac) = &self.keywords {
            // Overlapping, so one rule's keyword inside another's ("secret" in
            // "secret_key") still counts for both, as two `in` tests would.
            if ascii {
                if self.may_contain_keyword(text) {
                    for m in ac.find_overlapping_iter(text) {
                        let rule = self.keyword_rules[m.pattern().as_usize()];
                        if keep(rule, m.start(), m.end()) {
                            out.push((rule, m.start(), m.end(), None));
                        }
                    }
                }
            } else {
                let (lower, origin) = python_lower(text);
                for m in ac.find_overlapping_iter(&lower) {
                    let rule = self.keyword_rules[m.pattern().as_usize()];
                    let start = origin[m.start()];
                    let end = char_end(text, origin[m.end() - 1]);
                    if keep(rule, start, end) {
                        out.push((rule, start, end, None));
                    }
                }
            }
        }
        if self.regexes.is_empty() {
            return;
        }
        let folded = (!ascii).then(|| python_regex_text(text));
        for r in &self.regexes {
            if !admit.applies(r.rule) {
                continue;
            }
            let spans: Vec<(usize, usize)> = match (&r.ascii, ascii) {
                (Some(re), true) => re
                    .find_iter(text.as_bytes())
                    .map(|m| (m.start(), m.end()))
                    .collect(),
                _ => match &folded {
                    Some((folded, origin)) => r
                        .unicode
                        .find_iter(folded)
                        .map(|m| {
                            // The original character of a folded byte, or the end of the
                            // text for an offset at its end.
                            let start = origin.get(m.start()).copied().unwrap_or(text.len());
                            // An empty match counts, as for Python's `re.search` and on
                            // the ASCII path: an empty span where it occurred.
                            let end = if m.is_empty() {
                                start
                            } else {
                                char_end(text, origin[m.end() - 1])
                            };
                            (start, end)
                        })
                        .collect(),
                    None => r
                        .unicode
                        .find_iter(text)
                        .map(|m| (m.start(), m.end()))
                        .collect(),
                },
            };
            for (s, e) in spans {
                if keep(r.rule, s, e) {
                    out.push((r.rule, s, e, None));
                }
            }
        }
    }
}

/// Python's `\s` on `str` also matches U+001C–U+001F; added wherever `\s` appears (inside a
/// class or not). Escapes are skipped pairwise, so `\\s` stays a backslash and an `s`.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') if in_class => out.push_str("\\s\\x1C-\\x1F"),
                Some('s') => out.push_str("[\\s\\x1C-\\x1F]"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `str.lower()` (full Unicode lower-casing) and, for every byte of the result, the start
/// of the original character it came from.
fn python_lower(text: &str) -> (String, Vec<usize>) {
    let lower = text.to_lowercase();
    let mut origin = Vec::with_capacity(lower.len());
    for (i, c) in text.char_indices() {
        // Per character, lower-casing yields the same bytes as the whole-string form except
        // for a final sigma, which has the same length: the offsets line up.
        let n: usize = c.to_lowercase().map(char::len_utf8).sum();
        origin.extend(std::iter::repeat_n(i, n));
    }
    debug_assert_eq!(origin.len(), lower.len());
    (lower, origin)
}

fn char_end(text: &str, start: usize) -> usize {
    start + text[start..].chars().next().map_or(1, char::len_utf8)
}

static PYTHON_WORD: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}_]$").ok());
static RUST_WORD: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\w$").ok());

/// The text Python's `re` effectively matches with IGNORECASE (see the module comment),
/// and for each of its bytes the start of the original character.
fn python_regex_text(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    let words = (&*PYTHON_WORD, &*RUST_WORD);
    let mut buf = [0u8; 4];
    for (i, c) in text.char_indices() {
        let folded = if c.is_ascii() { c } else { python_fold(c) };
        let mut put = folded;
        if let (false, (Some(python), Some(rust))) = (folded.is_ascii(), words) {
            let s = folded.encode_utf8(&mut buf);
            let py = python.is_match(s);
            if py != rust.is_match(s) {
                // Letters without case for word characters, symbols for the others.
                put = if py { 'ㅂ' } else { '※' };
            }
        }
        let before = out.len();
        out.push(put);
        origin.extend(std::iter::repeat_n(i, out.len() - before));
    }
    (out, origin)
}

/// One character as Python's IGNORECASE compares it: its simple lower-case mapping (`İ`
/// → `i`), and for an uncased lower-case letter whose upper case is ASCII (`ı`, `ſ`), that
/// letter.
fn python_fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    let first = lower.next().unwrap_or(c);
    if first != c {
        return first;
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) if u.is_ascii() && u != c => u.to_ascii_lowercase(),
        _ => c,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn translation_adds_pythons_separators_to_whitespace() {
        assert_eq!(translate(r"\d{4}[-\s]?"), r"\d{4}[-\s\x1C-\x1F]?");
        assert_eq!(translate(r"a\sb"), r"a[\s\x1C-\x1F]b");
        assert_eq!(translate(r"a\\sb\.c"), r"a\\sb\.c");
    }

    #[test]
    fn lowering_keeps_offsets() {
        let (lower, origin) = python_lower("API_\u{212A}EY İx ΣΑΣ");
        assert!(lower.starts_with("api_key i\u{307}x"));
        assert_eq!(origin.len(), lower.len());
        assert_eq!(origin[4], 4);
    }

    #[test]
    fn regex_text_folds_and_classifies_as_python() {
        let text = "İı\u{17F}\u{212A} 4111\u{301} x²1 a\u{203F}b café";
        let (out, origin) = python_regex_text(text);
        assert!(out.starts_with("iisk 4111※ xㅂ1 a※b café"), "{out}");
        assert_eq!(origin.len(), out.len());
        assert_eq!(origin[1], 2);
    }
}
