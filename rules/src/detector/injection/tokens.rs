//! Window tokenization (words, letter-spaced runs, leetspeak folding) and the byte-level
//! matches (raw phrases, role markers, markup).

use super::anchors::*;
use super::phrases::*;
use super::*;

pub(super) fn word<'a>(words: &'a [u8], t: &Token) -> &'a [u8] {
    &words[t.word_start..t.word_end]
}

pub(super) fn listed(w: &[u8], list: &[&str]) -> bool {
    list.iter().any(|l| l.as_bytes() == w)
}

/// Leetspeak folding, applied only to tokens mixing letters with digits or `@`/`$` so
/// plain numbers ("2024") and ordinary words stay untouched.
pub(super) fn fold(b: u8) -> u8 {
    match b {
        b'1' => b'i',
        b'0' => b'o',
        b'3' => b'e',
        b'4' | b'@' => b'a',
        b'5' | b'$' => b's',
        b'7' => b't',
        _ => b,
    }
}

pub(super) fn fold_if_mixed(words: &mut [u8]) {
    let letters = words.iter().any(u8::is_ascii_alphabetic);
    let odd = words
        .iter()
        .any(|b| b.is_ascii_digit() || matches!(b, b'@' | b'$'));
    if letters && odd {
        words.iter_mut().for_each(|b| *b = fold(*b));
    }
}

/// The character at `i` (a char boundary) and its length, for bytes outside ASCII.
pub(super) fn char_at(text: &[u8], i: usize) -> Option<(char, usize)> {
    let len = match text[i] {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let bytes = text.get(i..i + len)?;
    let c = std::str::from_utf8(bytes).ok()?.chars().next()?;
    Some((c, len))
}

/// Scripts written without spaces: they separate tokens (their phrases are raw patterns).
pub(super) fn is_cjk(c: char) -> bool {
    matches!(u32::from(c), 0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x2FFFF)
}

/// Splits `text[rs..re]` into lowercase word tokens. ASCII letters and digits, and letters
/// of alphabetic scripts (accented Latin, Cyrillic, …; lowercased) make words; everything
/// else, CJK included, separates them: CJK phrases are matched on the raw bytes instead
/// (see `RAW_PHRASES`).
pub(super) fn tokenize(
    text: &[u8],
    rs: usize,
    re: usize,
    toks: &mut Vec<Token>,
    words: &mut Vec<u8>,
) {
    let letter_at = |i: usize| -> Option<(char, usize)> {
        let b = *text.get(i).filter(|_| i < re)?;
        if b.is_ascii_alphanumeric() {
            Some((char::from(b), 1))
        } else if b >= 0x80 {
            char_at(text, i).filter(|&(c, _)| c.is_alphanumeric() && !is_cjk(c))
        } else {
            None
        }
    };
    let joiner = |i: usize, width: usize| i + width < re && text[i + width].is_ascii_alphanumeric();
    let mut i = rs;
    while i < re {
        let b = text[i];
        if letter_at(i).is_none() && !(matches!(b, b'@' | b'$') && joiner(i, 1)) {
            i += if b >= 0x80 {
                char_at(text, i).map_or(1, |(_, n)| n)
            } else {
                1
            };
            continue;
        }
        let (start, word_start) = (i, words.len());
        while i < re {
            let c = text[i];
            if c.is_ascii_alphanumeric() {
                words.push(c.to_ascii_lowercase());
                i += 1;
            } else if matches!(c, b'@' | b'$') && joiner(i, 1) {
                words.push(c);
                i += 1;
            } else if let Some((ch, n)) = letter_at(i).filter(|_| c >= 0x80) {
                let mut buf = [0u8; 4];
                for lower in ch.to_lowercase() {
                    words.extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
                }
                i += n;
            } else if c == b'\'' && joiner(i, 1) {
                // Apostrophes inside a word are dropped so "you're" equals "youre".
                i += 1;
            } else if text[i..re].starts_with("\u{2019}".as_bytes()) && joiner(i, 3) {
                // The typographic apostrophe too: "you’re".
                i += 3;
            } else {
                break;
            }
        }
        fold_if_mixed(&mut words[word_start..]);
        toks.push(Token {
            start,
            end: i,
            word_start,
            word_end: words.len(),
            filler: false,
            id: NO_WORD,
        });
    }
}

/// Collapses "i g n o r e" (single characters joined by one identical separator byte)
/// into one token; a different or doubled separator ends the word.
pub(super) fn collapse_spaced(
    text: &[u8],
    toks: &mut Vec<Token>,
    words: &mut Vec<u8>,
    scratch: &mut Vec<Token>,
) {
    let single = |t: &Token| t.end - t.start == 1;
    if !toks.windows(3).any(|w| w.iter().all(single)) {
        return;
    }
    scratch.clear();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let mut j = i;
        if single(&t) && t.end < text.len() && SPACED_SEPARATORS.contains(&text[t.end]) {
            let sep = text[t.end];
            while j + 1 < toks.len() {
                let n = toks[j + 1];
                if single(&n) && n.start == toks[j].end + 1 && text[toks[j].end] == sep {
                    j += 1;
                } else {
                    break;
                }
            }
        }
        if j > i {
            let word_start = words.len();
            for k in i..=j {
                words.push(words[toks[k].word_start]);
            }
            fold_if_mixed(&mut words[word_start..]);
            let end = toks[j].end;
            scratch.push(Token {
                start: t.start,
                end,
                word_start,
                word_end: words.len(),
                filler: false,
                id: NO_WORD,
            });
        } else {
            scratch.push(t);
        }
        i = j + 1;
    }
    std::mem::swap(toks, scratch);
}

/// Code punctuation or a long stretch between two phrase words means they are not one
/// phrase (e.g. `print(system_prompt)`); nor does a sentence end when the gap holds words
/// other than filler ("ignore the footnotes. The instructions …").
pub(super) fn clean_gap(text: &[u8], from: usize, to: usize, any_words: bool) -> bool {
    to.saturating_sub(from) <= 24
        && !text[from..to].iter().any(|b| {
            matches!(b, b'(' | b')' | b'{' | b'}' | b'=' | b';')
                || (any_words && matches!(b, b'.' | b'!' | b'?' | b'\n'))
        })
}

/// Whether `text[start..end]` stands between quote marks.
pub(super) fn quoted(text: &[u8], start: usize, end: usize) -> bool {
    const OPEN: &[&str] = &["'", "\"", "`", "\u{201c}", "\u{2018}", "\u{ab}", "\u{201e}"];
    const CLOSE: &[&str] = &["'", "\"", "`", "\u{201d}", "\u{2019}", "\u{bb}", "\u{201c}"];
    OPEN.iter().any(|q| text[..start].ends_with(q.as_bytes()))
        && CLOSE.iter().any(|q| text[end..].starts_with(q.as_bytes()))
}

/// The span of a raw phrase anchored at `start..end`: every other part must occur within
/// `RAW_REACH` bytes of the anchor, before or after it.
pub(super) fn raw_phrase(
    text: &[u8],
    start: usize,
    end: usize,
    parts: &[&str],
) -> Option<(usize, usize)> {
    let lo = start.saturating_sub(RAW_REACH);
    let hi = (end + RAW_REACH).min(text.len());
    let (mut first, mut last) = (start, end);
    for part in parts {
        let (s, e) = part
            .split('|')
            .filter_map(|alt| {
                let at = memchr::memmem::find(&text[lo..hi], alt.as_bytes())?;
                Some((lo + at, lo + at + alt.len()))
            })
            .min()?;
        first = first.min(s);
        last = last.max(e);
    }
    Some((first, last))
}

/// Returns the end of a chat-template delimiter starting at `s`, if it is one.
pub(super) fn role_marker(text: &[u8], s: usize, e: usize, marker: usize) -> Option<usize> {
    let (lit, needs_role) = ROLE_MARKERS[marker];
    if !needs_role {
        return Some(e);
    }
    let hashes = lit == "###";
    if hashes {
        // Only indentation may precede it on its line: walk back over blanks alone, so a
        // long line of `###` costs nothing per match.
        let before = text[..s].iter().rev().find(|&&b| b != b' ' && b != b'\t');
        if before.is_some_and(|&b| b != b'\n') {
            return None;
        }
        if text.get(e) != Some(&b' ') {
            return None;
        }
    }
    let mut i = e;
    while i < text.len() && i < e + 8 && text[i].is_ascii_whitespace() {
        i += 1;
    }
    let name_end = i + text[i..]
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let name = text[i..name_end].to_ascii_lowercase();
    if !listed(&name, ROLE_NAMES) {
        return None;
    }
    if !hashes {
        return Some(name_end);
    }
    let mut j = name_end;
    while j < text.len() && j < name_end + 4 && text[j] == b' ' {
        j += 1;
    }
    (text.get(j) == Some(&b':')).then_some(j + 1)
}

/// The end of the markup signal anchored at `s..e`, with its family and weight, if it is one.
pub(super) fn markup(
    text: &[u8],
    s: usize,
    e: usize,
    kind: Markup,
) -> Option<(&'static str, u8, usize)> {
    match kind {
        Markup::TemplatedImage => {
            let close = memchr::memmem::find(&text[e..(e + 200).min(text.len())], b"](")?;
            let url_start = e + close + 2;
            let url = &text[url_start..(url_start + 400).min(text.len())];
            let url = &url[..url
                .iter()
                .position(|&b| b == b')' || b.is_ascii_whitespace())
                .unwrap_or(url.len())];
            let web = [&b"https://"[..], b"http://"].iter().any(|p| {
                url.get(..p.len())
                    .is_some_and(|u| u.eq_ignore_ascii_case(p))
            });
            let query = &url[memchr::memchr(b'?', url)?..];
            let templated = query.iter().any(|b| matches!(b, b'[' | b'{' | b'<' | b'$'))
                || query.windows(3).any(|w| {
                    [&b"%7b"[..], b"%5b", b"%24"]
                        .iter()
                        .any(|t| w.eq_ignore_ascii_case(t))
                });
            let mut end = url_start + url.len();
            while end < text.len() && text[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            end += usize::from(text.get(end) == Some(&b')'));
            (web && templated).then_some(("injection.exfiltration", STRONG, end))
        }
        Markup::ActiveContent => {
            let attr = text[s..e].starts_with(b"on");
            let next = text[e..].iter().take(4).find(|b| !b.is_ascii_whitespace());
            let word_start = s == 0 || !text[s - 1].is_ascii_alphanumeric();
            (word_start && (!attr || next == Some(&b'='))).then_some((
                "injection.output_coercion",
                WEAK,
                e,
            ))
        }
        Markup::ForgedTurn => {
            let line_start = text[..s]
                .iter()
                .rev()
                .find(|&&b| b != b' ' && b != b'\t')
                .is_none_or(|&b| b == b'\n');
            line_start.then_some(("injection.role_override", WEAK, e))
        }
    }
}
