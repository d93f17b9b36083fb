//! Overlapping Aho-Corasick search, in two interleaved halves.
//!
//! A DFA walk is bound by the latency of one table load per byte: each step needs the state
//! the step before produced, and the keyword-plus-anchor DFA (≈ 700 KB) does not fit the L1
//! cache. Walking the two halves of a text in lockstep gives the CPU two independent chains
//! to overlap: ≈ 30 % less time on a 2 KB prompt (4.2 → 3.0 µs; four lanes did no better).
//! The matches come back in the order of the library's own overlapping search.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind};

/// Below this many bytes one walk is cheaper than splitting.
const SPLIT_FROM: usize = 256;

/// Walks in lockstep.
const LANES: usize = 2;

/// A match: (pattern index, start, end).
pub(crate) type Found = (usize, usize, usize);

/// An unanchored, caseless (ASCII), standard-semantics DFA over `needles` (none empty),
/// without a prefilter (the walk below visits every byte anyway).
pub(crate) fn build(needles: &[&[u8]]) -> Result<DFA, aho_corasick::BuildError> {
    aho_corasick::dfa::Builder::new()
        .match_kind(MatchKind::Standard)
        .ascii_case_insensitive(true)
        .prefilter(false)
        .build(needles)
}

/// Appends every match of `dfa` in `hay`, overlapping ones included, ordered by end, then
/// longest first, as `AhoCorasick::find_overlapping_iter` reports them.
pub(crate) fn find(dfa: &DFA, hay: &[u8], out: &mut Vec<Found>) {
    let Ok(start) = dfa.start_state(Anchored::No) else {
        return;
    };
    let n = hay.len();
    let longest = dfa.max_pattern_len().saturating_sub(1);
    if n < SPLIT_FROM || longest >= n / LANES {
        let mut sid = start;
        for (i, &byte) in hay.iter().enumerate() {
            sid = dfa.next_state(Anchored::No, sid, byte);
            if dfa.is_special(sid) {
                report(dfa, sid, i + 1, usize::MAX, out);
            }
        }
        return;
    }
    // Lane k reports the matches starting in its slice, so it walks on past the slice's
    // end for as long as the longest needle could still end.
    let from: [usize; LANES] = std::array::from_fn(|k| k * n / LANES);
    let keep_below: [usize; LANES] = std::array::from_fn(|k| from.get(k + 1).copied().unwrap_or(n));
    let to: [usize; LANES] = std::array::from_fn(|k| (keep_below[k] + longest).min(n));
    let lockstep = (0..LANES).map(|k| to[k] - from[k]).min().unwrap_or(0);
    let base = out.len();
    let mut sid = [start; LANES];
    for i in 0..lockstep {
        for k in 0..LANES {
            sid[k] = dfa.next_state(Anchored::No, sid[k], hay[from[k] + i]);
        }
        for k in 0..LANES {
            if dfa.is_special(sid[k]) {
                report(dfa, sid[k], from[k] + i + 1, keep_below[k], out);
            }
        }
    }
    for k in 0..LANES {
        let rest = from[k] + lockstep..to[k];
        for (at, &byte) in rest.clone().zip(&hay[rest]) {
            sid[k] = dfa.next_state(Anchored::No, sid[k], byte);
            if dfa.is_special(sid[k]) {
                report(dfa, sid[k], at + 1, keep_below[k], out);
            }
        }
    }
    // Stable: matches with the same end and start come from one lane, in pattern order.
    out[base..].sort_by_key(|&(_, start, end)| (end, start));
}

/// Reports the matches of state `sid` ending at `end` that start before `keep_below`.
#[inline]
fn report(dfa: &DFA, sid: StateID, end: usize, keep_below: usize, out: &mut Vec<Found>) {
    if !dfa.is_match(sid) {
        return;
    }
    for i in 0..dfa.match_len(sid) {
        let pattern = dfa.match_pattern(sid, i);
        let start = end - dfa.pattern_len(pattern);
        if start < keep_below {
            out.push((pattern.as_usize(), start, end));
        }
    }
}

#[cfg(test)]
mod tests {
    use aho_corasick::AhoCorasickBuilder;
    use proptest::prelude::*;

    use super::*;

    fn reference(needles: &[&[u8]], hay: &[u8]) -> Vec<Found> {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(needles)
            .unwrap();
        ac.find_overlapping_iter(hay)
            .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Texts from a small alphabet around the split size, with needles that overlap each
        /// other, repeat and straddle the middle: the split walk equals the library's.
        #[test]
        fn split_walk_equals_the_librarys_overlapping_search(
            needles in proptest::collection::vec("[abA ]{1,6}", 1..12),
            hay in "[abAB c]{0,700}",
        ) {
            let needles: Vec<&[u8]> = needles.iter().map(|n| n.as_bytes()).collect();
            let dfa = build(&needles).unwrap();
            let mut found = Vec::new();
            find(&dfa, hay.as_bytes(), &mut found);
            prop_assert_eq!(found, reference(&needles, hay.as_bytes()));
        }
    }

    #[test]
    fn a_match_across_the_middle_is_found_once() {
        let hay = format!("{}needle{}", "x".repeat(297), "y".repeat(300));
        let dfa = build(&[b"needle", b"eed", b"x"]).unwrap();
        let mut found = Vec::new();
        find(&dfa, hay.as_bytes(), &mut found);
        assert_eq!(found, reference(&[b"needle", b"eed", b"x"], hay.as_bytes()));
        assert_eq!(found.iter().filter(|f| f.0 == 0).count(), 1);
    }
}
