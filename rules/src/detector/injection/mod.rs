//! Prompt-injection phrase detection for user-supplied LLM traffic.
//!
//! Families (ids are `injection.<family>`):
//! - `ignore_instructions`: "ignore all previous instructions", "disregard everything above"…
//! - `reveal_system_prompt`: "print your system prompt", "repeat the words above"…
//! - `persona_jailbreak`: "do anything now", "you are DAN", "you are now uncensored"…
//! - `developer_mode`: "developer mode enabled", "enable god mode" in an AI context.
//! - `role_override`: chat-template delimiters such as `<|im_start|>system`, `[INST]`.
//! - `safety_bypass`: "without any ethical guidelines", "ignore OpenAI's policies"…
//!
//! Approach: one case-insensitive Aho-Corasick pass over anchor words decides whether
//! anything needs a closer look, so injection-free prose costs a single automaton scan.
//! Each anchor hit opens a bounded window; overlapping windows are merged so every byte
//! is tokenized at most once, which keeps adversarial input linear. Windows are split
//! into lowercase ASCII word tokens (any non-alphanumeric byte separates words, so
//! spacing, case, punctuation and `snake_case` variants all look alike), letter-spaced
//! runs ("i g n o r e") are collapsed and leetspeak inside mixed tokens is folded.
//! Phrase patterns (data tables below) are then matched as slot sequences over tokens
//! with a small number of filler words allowed between slots.
//!
//! Decisions on ambiguous inputs:
//! - "how do I print the system prompt variable in LangChain?" does not fire: reveal
//!   matches followed by a code noun (variable, field, template…) are dropped, and any
//!   phrase whose words are separated by code punctuation (`(`, `=`, `{`…) is rejected,
//!   which also covers `print(system_prompt)`.
//! - `developer_mode` patterns, and a bare "jailbroken", need an AI word (you, ChatGPT,
//!   assistant, respond…) near the match and no device/browser/game word (Chrome,
//!   Android, iPhone, Skyrim…), so "enable developer mode in Chrome" never fires even
//!   when the question says "you".
//! - "DAN" only counts when written uppercase.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// Bytes looked at before/after an anchor; phrases are short, so this bounds the work.
const BEFORE: usize = 160;
const AFTER: usize = 240;

mod anchors;
mod phrases;
#[cfg(test)]
mod tests;
mod tokens;

use anchors::*;
use phrases::*;
use tokens::*;

/// Where a text comes from. A user writing "when you summarize this, include the dates" is
/// asking for something; the same words inside a web page or tool output the model reads are
/// somebody else steering it, so some patterns (`@doc`) count only in documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The user's prompt, or the operator's system prompt.
    User,
    /// What the model reads or produced: responses, tool arguments and results.
    Document,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnchorKind {
    Phrase,
    /// The first part of `RAW_PHRASES[i]`.
    Raw(usize),
    Dan,
    Role(usize),
    Markup(Markup),
}

#[derive(Debug)]
struct Alt {
    word: Box<[u8]>,
    prefix: bool,
    exact: bool,
}

#[derive(Debug)]
struct Slot {
    /// Whole-word alternatives as vocabulary ids (sorted): one integer test per token.
    words: Vec<u32>,
    /// Prefix and case-sensitive alternatives, compared byte by byte.
    alts: Vec<Alt>,
    gap: usize,
    /// `~~N`: the gap may hold any words, not only filler (word order varies more in the
    /// other languages, and in a few long English set-ups).
    any_gap: bool,
    optional: bool,
}

#[derive(Debug)]
struct Pattern {
    family: u16,
    slots: Vec<Slot>,
    ai_context: bool,
    no_code_noun: bool,
    /// Counts only in text the model reads rather than the user writes (see `Source`).
    document_only: bool,
    /// Evidence this pattern adds; a text is reported once its signals reach `THRESHOLD`.
    weight: u8,
    index: u16,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    word_start: usize,
    word_end: usize,
    filler: bool,
    /// The word's vocabulary id, `NO_WORD` if no pattern names it.
    id: u32,
}

const NO_WORD: u32 = u32::MAX;

/// FNV-1a for the vocabulary: words are a few bytes, and SipHash's set-up would cost more
/// than the lookup.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Vocabulary = HashMap<Box<[u8]>, u32, BuildHasherDefault<Fnv>>;

#[derive(Debug)]
pub struct InjectionScanner {
    ids: Vec<&'static str>,
    gate: Option<AhoCorasick>,
    /// The gate's patterns, so a rule set can fold them into its own keyword automaton.
    needles: Vec<Vec<u8>>,
    anchor_kinds: Vec<AnchorKind>,
    patterns: Vec<Pattern>,
    /// Every whole word a pattern or the filler list names, with its id.
    vocabulary: Vocabulary,
    /// By vocabulary id: whether the word is filler.
    filler: Vec<bool>,
    /// By vocabulary id: the patterns whose first slot names the word.
    by_word: Vec<Vec<u16>>,
    /// Patterns whose first slot has prefix or case-sensitive alternatives, by the first
    /// byte those can start with.
    by_lead: Vec<Vec<u16>>,
}

fn parse_pattern(family: u16, src: &str) -> Pattern {
    let mut p = Pattern {
        family,
        slots: Vec::new(),
        ai_context: false,
        no_code_noun: false,
        document_only: false,
        weight: STRONG,
        index: 0,
    };
    let mut gap = 0;
    let mut any_gap = false;
    for part in src.split_whitespace() {
        match part {
            "@ai" => p.ai_context = true,
            "@nf" => p.no_code_noun = true,
            "@w" => p.weight = WEAK,
            "@doc" => p.document_only = true,
            _ if part.starts_with("~~") => {
                gap = part[2..].parse().unwrap_or(0);
                any_gap = true;
            }
            _ if part.starts_with('~') => gap = part[1..].parse().unwrap_or(0),
            _ => {
                let (body, optional) = match part.strip_suffix('?') {
                    Some(b) => (b, true),
                    None => (part, false),
                };
                let alts = body
                    .split('|')
                    .map(|a| {
                        let (a, exact) = match a.strip_prefix('=') {
                            Some(r) => (r, true),
                            None => (a, false),
                        };
                        let (a, prefix) = match a.strip_suffix('*') {
                            Some(r) => (r, true),
                            None => (a, false),
                        };
                        Alt {
                            word: a.as_bytes().into(),
                            prefix,
                            exact,
                        }
                    })
                    .collect();
                p.slots.push(Slot {
                    words: Vec::new(),
                    alts,
                    gap,
                    any_gap,
                    optional,
                });
                gap = 0;
                any_gap = false;
            }
        }
    }
    p
}

impl Default for InjectionScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl InjectionScanner {
    pub fn new() -> InjectionScanner {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let mut anchor_kinds = Vec::new();
        for a in ANCHORS {
            needles.push(a.as_bytes().to_vec());
            anchor_kinds.push(if *a == "dan" {
                AnchorKind::Dan
            } else {
                AnchorKind::Phrase
            });
        }
        for w in SPACED_ANCHOR_WORDS {
            for &sep in SPACED_SEPARATORS {
                let mut n = Vec::new();
                for (i, b) in w.bytes().enumerate() {
                    if i > 0 {
                        n.push(sep);
                    }
                    n.push(b);
                }
                needles.push(n);
                anchor_kinds.push(AnchorKind::Phrase);
            }
        }
        for (i, (_, _, parts)) in RAW_PHRASES.iter().enumerate() {
            for alt in parts[0].split('|') {
                needles.push(alt.as_bytes().to_vec());
                anchor_kinds.push(AnchorKind::Raw(i));
            }
        }
        for (i, (m, _)) in ROLE_MARKERS.iter().enumerate() {
            needles.push(m.as_bytes().to_vec());
            anchor_kinds.push(AnchorKind::Role(i));
        }
        for (m, kind) in MARKUP {
            needles.push(m.as_bytes().to_vec());
            anchor_kinds.push(AnchorKind::Markup(*kind));
        }
        // A fixed table of short literals cannot exceed automaton limits; `None` only
        // keeps `new` panic-free if that ever changed (the scanner then finds nothing).
        // A full DFA: with this many short case-insensitive needles the default NFA and its
        // prefilter crawl (~180 MB/s on prose); the DFA visits each byte once.
        let gate = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&needles)
            .ok();
        let mut patterns = Vec::new();
        for (fi, (_, pats)) in FAMILIES.iter().enumerate() {
            for src in pats.iter() {
                let mut pattern = parse_pattern(fi as u16, src);
                pattern.index = u16::try_from(patterns.len()).unwrap_or(u16::MAX - 1);
                patterns.push(pattern);
            }
        }
        // Whole-word alternatives become ids, so a token is hashed once and each slot test
        // is an integer search instead of string comparisons.
        let mut vocabulary = Vocabulary::default();
        let mut intern = |w: &[u8]| -> u32 {
            let next = u32::try_from(vocabulary.len()).unwrap_or(NO_WORD - 1);
            *vocabulary.entry(w.into()).or_insert(next)
        };
        let filler_ids: Vec<u32> = FILLER.iter().map(|w| intern(w.as_bytes())).collect();
        let mut by_lead: Vec<Vec<u16>> = vec![Vec::new(); 256];
        let mut first_words: Vec<(u32, u16)> = Vec::new();
        for (pi, p) in patterns.iter_mut().enumerate() {
            let pi = u16::try_from(pi).unwrap_or(u16::MAX);
            for (si, slot) in p.slots.iter_mut().enumerate() {
                let (words, rest): (Vec<Alt>, Vec<Alt>) = std::mem::take(&mut slot.alts)
                    .into_iter()
                    .partition(|a| !a.prefix && !a.exact);
                slot.words = words.iter().map(|a| intern(&a.word)).collect();
                slot.words.sort_unstable();
                slot.alts = rest;
                if si == 0 {
                    first_words.extend(slot.words.iter().map(|&w| (w, pi)));
                    for a in &slot.alts {
                        if let Some(&b) = a.word.first() {
                            let lead = &mut by_lead[usize::from(b.to_ascii_lowercase())];
                            if lead.last() != Some(&pi) {
                                lead.push(pi);
                            }
                        }
                    }
                }
            }
        }
        let mut by_word: Vec<Vec<u16>> = vec![Vec::new(); vocabulary.len()];
        for (w, pi) in first_words {
            by_word[w as usize].push(pi);
        }
        let mut filler = vec![false; vocabulary.len()];
        for w in filler_ids {
            filler[w as usize] = true;
        }
        InjectionScanner {
            ids: FAMILIES.iter().map(|(id, _)| *id).collect(),
            gate,
            needles,
            anchor_kinds,
            patterns,
            vocabulary,
            filler,
            by_word,
            by_lead,
        }
    }
}

struct Region<'a> {
    text: &'a [u8],
    toks: &'a [Token],
    words: &'a [u8],
}

impl Region<'_> {
    fn accepts(&self, slot: &Slot, t: usize) -> bool {
        let tok = &self.toks[t];
        if tok.id != NO_WORD && slot.words.binary_search(&tok.id).is_ok() {
            return true;
        }
        let w = word(self.words, tok);
        slot.alts.iter().any(|a| {
            if a.exact {
                self.text[tok.start..tok.end] == *a.word
            } else if a.prefix {
                w.starts_with(&a.word)
            } else {
                w == &*a.word
            }
        })
    }

    /// Backtracking over slot choices; gaps and slot counts are tiny constants, so
    /// the work per starting token is bounded.
    fn match_from(&self, p: &Pattern, si: usize, pos: usize, last: usize) -> Option<usize> {
        let Some(slot) = p.slots.get(si) else {
            return Some(last);
        };
        for k in 0..=slot.gap {
            let t = pos + k;
            if t >= self.toks.len() {
                break;
            }
            if k > 0 && !self.toks[t - 1].filler && !slot.any_gap {
                break;
            }
            if self.accepts(slot, t)
                && clean_gap(
                    self.text,
                    self.toks[last].end,
                    self.toks[t].start,
                    slot.any_gap && k > 0,
                )
            {
                if let Some(end) = self.match_from(p, si + 1, t + 1, t) {
                    return Some(end);
                }
            }
        }
        if slot.optional {
            return self.match_from(p, si + 1, pos, last);
        }
        None
    }

    fn context_ok(&self, first: usize, last: usize) -> bool {
        let lo = first.saturating_sub(10);
        let hi = (last + 12).min(self.toks.len());
        let near = || self.toks[lo..hi].iter().map(|t| word(self.words, t));
        near().any(|w| listed(w, AI_CONTEXT)) && !near().any(|w| listed(w, DEVICE_CONTEXT))
    }
}

impl InjectionScanner {
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.ids.iter().copied()
    }

    pub fn id(&self, family: u16) -> &'static str {
        self.ids
            .get(usize::from(family))
            .copied()
            .unwrap_or("injection.unknown")
    }

    pub fn index_of(&self, id: &str) -> Option<u16> {
        self.ids
            .iter()
            .position(|i| *i == id)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// Appends (family index, start, end): byte span of each matched phrase in `text`,
    /// on char boundaries, in bounds, non-overlapping within a family.
    /// The anchor words (ASCII case-insensitive), indexed as `scan_anchors` expects, so a
    /// rule set can find them in the same automaton pass as its keywords.
    pub fn needles(&self) -> &[Vec<u8>] {
        &self.needles
    }

    pub fn scan(&self, text: &str, source: Source, out: &mut Vec<(u16, usize, usize)>) {
        let Some(gate) = &self.gate else {
            return;
        };
        let anchors = gate
            .find_iter(text.as_bytes())
            .map(|m| (m.pattern().as_usize(), m.start(), m.end()));
        self.scan_anchors(text, source, anchors, out);
    }

    /// Scans the windows around `anchors`: (needle index, start, end), non-overlapping, in
    /// text order.
    pub fn scan_anchors(
        &self,
        text: &str,
        source: Source,
        anchors: impl IntoIterator<Item = (usize, usize, usize)>,
        out: &mut Vec<(u16, usize, usize)>,
    ) {
        let bytes = text.as_bytes();
        let base = out.len();
        let mut buf = Buffers::default();
        let mut signals: Vec<Signal> = Vec::new();
        let mut region: Option<(usize, usize)> = None;
        for (needle, s, e) in anchors {
            match self.anchor_kinds[needle] {
                AnchorKind::Role(i) => {
                    if let Some(end) = role_marker(bytes, s, e, i) {
                        signals.push(Signal {
                            family: ROLE_FAMILY,
                            start: s,
                            end,
                            key: u16::MAX,
                            weight: STRONG,
                        });
                    }
                    continue;
                }
                AnchorKind::Dan => {
                    let boundary = |i: Option<&u8>| !i.is_some_and(u8::is_ascii_alphanumeric);
                    let before = s.checked_sub(1).and_then(|i| bytes.get(i));
                    if &bytes[s..e] != b"DAN" || !boundary(before) || !boundary(bytes.get(e)) {
                        continue;
                    }
                }
                AnchorKind::Raw(i) => {
                    let (family, weight, parts) = RAW_PHRASES[i];
                    if let Some((start, end)) = raw_phrase(bytes, s, e, &parts[1..]) {
                        signals.push(Signal {
                            family: self.index_of(family).unwrap_or(0),
                            start,
                            end,
                            key: u16::MAX - 1 - u16::try_from(i).unwrap_or(0),
                            weight,
                        });
                    }
                    continue;
                }
                AnchorKind::Markup(kind) => {
                    if let Some((family, weight, end)) = markup(bytes, s, e, kind) {
                        signals.push(Signal {
                            family: self.index_of(family).unwrap_or(0),
                            start: s,
                            end,
                            key: u16::MAX - 64 - kind as u16,
                            weight,
                        });
                    }
                    continue;
                }
                AnchorKind::Phrase => {}
            }
            let (ws, we) = (s.saturating_sub(BEFORE), (e + AFTER).min(bytes.len()));
            region = match region {
                Some((rs, re)) if ws <= re => Some((rs.min(ws), re.max(we))),
                Some(r) => {
                    self.scan_region(bytes, r, source, &mut buf, &mut signals);
                    Some((ws, we))
                }
                None => Some((ws, we)),
            };
        }
        if let Some(r) = region {
            self.scan_region(bytes, r, source, &mut buf, &mut signals);
        }
        if score(&mut signals) < THRESHOLD {
            return;
        }
        out.extend(signals.iter().map(|g| (g.family, g.start, g.end)));
        let found = &mut out[base..];
        found.sort_unstable_by_key(|&(f, s, e)| (f, s, std::cmp::Reverse(e)));
        let mut kept = base;
        for i in base..out.len() {
            let (f, s, e) = out[i];
            let overlaps = kept > base && out[kept - 1].0 == f && s < out[kept - 1].2;
            if !overlaps {
                out[kept] = (f, s, e);
                kept += 1;
            }
        }
        out.truncate(kept);
    }

    fn scan_region(
        &self,
        text: &[u8],
        (mut rs, mut re): (usize, usize),
        source: Source,
        buf: &mut Buffers,
        out: &mut Vec<Signal>,
    ) {
        // Widen to whole words so the window edge never cuts a phrase word in half.
        let word_byte = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        let mut steps = 0;
        while rs > 0 && steps < 96 && word_byte(text[rs - 1]) {
            rs -= 1;
            steps += 1;
        }
        steps = 0;
        while re < text.len() && steps < 96 && word_byte(text[re]) {
            re += 1;
            steps += 1;
        }
        // Never start or end inside a character.
        while rs < re && text[rs] & 0xC0 == 0x80 {
            rs += 1;
        }
        while re < text.len() && text[re] & 0xC0 == 0x80 {
            re += 1;
        }
        buf.toks.clear();
        buf.words.clear();
        tokenize(text, rs, re, &mut buf.toks, &mut buf.words);
        collapse_spaced(text, &mut buf.toks, &mut buf.words, &mut buf.scratch);
        for t in &mut buf.toks {
            t.id = self
                .vocabulary
                .get(word(&buf.words, t))
                .copied()
                .unwrap_or(NO_WORD);
            t.filler = t.id != NO_WORD && self.filler[t.id as usize];
        }
        let r = Region {
            text,
            toks: &buf.toks,
            words: &buf.words,
        };
        for i in 0..r.toks.len() {
            let lead = r.words.get(r.toks[i].word_start).copied().unwrap_or(0);
            let by_word = match r.toks[i].id {
                NO_WORD => &[][..],
                id => &self.by_word[id as usize][..],
            };
            for &pi in by_word.iter().chain(&self.by_lead[usize::from(lead)]) {
                let p = &self.patterns[usize::from(pi)];
                let Some(first) = p.slots.first() else {
                    continue;
                };
                if (p.document_only && source == Source::User) || !r.accepts(first, i) {
                    continue;
                }
                let Some(last) = r.match_from(p, 1, i + 1, i) else {
                    continue;
                };
                if p.ai_context && !r.context_ok(i, last) {
                    continue;
                }
                if p.no_code_noun
                    && r.toks
                        .get(last + 1)
                        .is_some_and(|t| listed(word(r.words, t), CODE_NOUNS))
                {
                    continue;
                }
                let (start, end) = (r.toks[i].start, r.toks[last].end);
                // A phrase in quotes is usually being talked about ("attacks such as 'ignore
                // previous instructions'"), but jailbreaks quote their own slogans too (DAN,
                // which stands for "do anything now"): quoted, it is weak evidence at most.
                let weight = if quoted(text, start, end) {
                    p.weight - WEAK
                } else {
                    p.weight
                };
                if weight == 0 {
                    continue;
                }
                out.push(Signal {
                    family: p.family,
                    start,
                    end,
                    key: p.index,
                    weight,
                });
            }
        }
    }
}

/// The evidence in `signals`, weighed per text: each distinct pattern counts once, and
/// signals whose spans overlap are one piece of evidence worth the strongest of them ("respond
/// in two paragraphs" matches two dual-answer patterns but says one thing). Nothing is
/// reported below `THRESHOLD`: a lone weak signal, such as "act as", is benign.
fn score(signals: &mut [Signal]) -> u32 {
    signals.sort_unstable_by_key(|g| (g.start, g.end));
    let mut seen: Vec<u16> = Vec::with_capacity(signals.len());
    let (mut total, mut cluster, mut cluster_end) = (0u32, 0u8, 0usize);
    for g in signals.iter() {
        if seen.contains(&g.key) {
            continue;
        }
        seen.push(g.key);
        if g.start >= cluster_end {
            total += u32::from(cluster);
            cluster = 0;
        }
        cluster = cluster.max(g.weight);
        cluster_end = cluster_end.max(g.end);
    }
    total + u32::from(cluster)
}

/// A pattern's match, and the evidence it adds.
struct Signal {
    family: u16,
    start: usize,
    end: usize,
    /// Which pattern: the same one twice is one piece of evidence.
    key: u16,
    weight: u8,
}

#[derive(Default)]
struct Buffers {
    toks: Vec<Token>,
    words: Vec<u8>,
    scratch: Vec<Token>,
}
