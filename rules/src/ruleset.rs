//! Rules compiled once into one automaton, shared read-only by every evaluation.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::verdict::{redact, Detection, Field, Verdict};
use crate::{Error, Event, Rule, RuleKind, Severity};

/// Detections kept per rule and field; enough evidence for triage, bounded storage.
const MAX_DETECTIONS_PER_RULE_FIELD: usize = 8;

#[derive(Debug, Clone)]
struct Pattern {
    rule: usize,
    /// Kept only for case-sensitive keywords, to confirm the automaton's caseless match.
    exact: Option<String>,
    whole_word: bool,
}

/// An immutable, compiled set of rules. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Every keyword of every rule; case-sensitive keywords are confirmed after matching.
    keywords: AhoCorasick,
    patterns: Vec<Pattern>,
    threshold: u32,
}

impl RuleSet {
    /// Compiles the enabled rules. A rule that cannot be compiled is an error naming it.
    pub fn build(rules: Vec<Rule>) -> Result<RuleSet, Error> {
        let mut literals: Vec<&str> = Vec::new();
        let mut patterns = Vec::new();
        let rules: Vec<Rule> = rules.into_iter().filter(|r| r.enabled).collect();
        for (index, rule) in rules.iter().enumerate() {
            rule.validate()?;
            match &rule.kind {
                RuleKind::Keyword {
                    keywords,
                    case_sensitive,
                    whole_word,
                } => {
                    for keyword in keywords {
                        literals.push(keyword);
                        patterns.push(Pattern {
                            rule: index,
                            exact: case_sensitive.then(|| keyword.clone()),
                            whole_word: *whole_word,
                        });
                    }
                }
            }
        }
        let keywords = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(&literals)
            .map_err(|e| Error::InvalidPack(e.to_string()))?;
        Ok(RuleSet {
            rules,
            keywords,
            patterns,
            threshold: 1,
        })
    }

    /// Events scoring at least `threshold` are flagged (FlagWise flags any match: 1).
    pub fn with_threshold(mut self, threshold: u32) -> RuleSet {
        self.threshold = threshold.max(1);
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn evaluate(&self, event: &Event) -> Verdict {
        let mut detections = Vec::new();
        let mut matched = vec![false; self.rules.len()];
        self.scan(Field::Prompt, &event.prompt, &mut matched, &mut detections);
        if let Some(response) = &event.response {
            self.scan(Field::Response, response, &mut matched, &mut detections);
        }
        let mut score: u32 = 0;
        let mut severity: Option<Severity> = None;
        for (rule, _) in self.rules.iter().zip(&matched).filter(|(_, m)| **m) {
            score = score.saturating_add(rule.points);
            severity = severity.max(Some(rule.severity));
        }
        let score = score.min(100);
        Verdict {
            score,
            severity,
            flagged: score >= self.threshold,
            detections,
        }
    }

    fn scan(&self, field: Field, text: &str, matched: &mut [bool], out: &mut Vec<Detection>) {
        let mut per_rule = vec![0usize; self.rules.len()];
        for m in self.keywords.find_overlapping_iter(text) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            let (start, end) = (m.start(), m.end());
            if per_rule[pattern.rule] >= MAX_DETECTIONS_PER_RULE_FIELD {
                continue;
            }
            if pattern.exact.as_deref().is_some_and(|k| k != &text[start..end]) {
                continue;
            }
            if pattern.whole_word && !is_whole_word(text, start, end) {
                continue;
            }
            per_rule[pattern.rule] += 1;
            matched[pattern.rule] = true;
            out.push(Detection {
                rule_id: self.rules[pattern.rule].id.clone(),
                field,
                start,
                end,
                excerpt: redact(text, start, end),
            });
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True when the match is not glued to a word character on either side. ASCII-case-insensitive
/// matching keeps spans on char boundaries, so slicing here cannot panic.
fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back().is_none_or(|c| !is_word_char(c));
    let after = text[end..].chars().next().is_none_or(|c| !is_word_char(c));
    let first = text[start..end].chars().next().is_some_and(is_word_char);
    let last = text[start..end].chars().next_back().is_some_and(is_word_char);
    (before || !first) && (after || !last)
}
