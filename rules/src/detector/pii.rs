//! Validated personal-data detectors: payment cards, IBANs, US SSNs, e-mail addresses, phone
//! numbers and IP addresses.
//!
//! Every detector is a hand-written byte scanner (no regex): cards, IBANs, SSNs, phones and IPv4
//! are anchored at the start of each run of ASCII digits (found 32 bytes at a time with a
//! vectorisable test), e-mail at `@`
//! and IPv6 at `:` (both via `memchr`). Each anchor is examined in bounded time, or the token
//! around it is examined once, and the scan resumes after it, so the cost stays linear even on
//! megabyte runs of digits, `@`, `.` or `:`.
//!
//! Boundaries: a value must not touch a word character (letter, digit or `_`, Unicode-aware) on
//! either side, nor continue a number (e.g. `-`/`.` followed by a digit). Ideographic and other
//! characters from U+2E80 up (CJK, kana, Hangul, full-width forms) are *not* treated as word
//! characters, because those scripts routinely write numbers without spaces around them.

use std::net::Ipv6Addr;

use memchr::memchr;

/// A kind of personal data, with a stable rule id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PiiKind {
    CreditCard,
    Iban,
    UsSsn,
    Email,
    Phone,
    IpAddress,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::IpAddress,
    ];

    /// The stable detector id, e.g. `"pii.credit_card"`.
    pub fn id(self) -> &'static str {
        match self {
            PiiKind::CreditCard => "pii.credit_card",
            PiiKind::Iban => "pii.iban",
            PiiKind::UsSsn => "pii.us_ssn",
            PiiKind::Email => "pii.email",
            PiiKind::Phone => "pii.phone",
            PiiKind::IpAddress => "pii.ip_address",
        }
    }

    pub fn from_id(id: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// The personal-data detector: every [`PiiKind`], its ids in `PiiKind::ALL` order.
pub struct Pii;

impl super::Detector for Pii {
    fn ids(&self) -> Vec<&'static str> {
        PiiKind::ALL.iter().map(|k| k.id()).collect()
    }

    fn scan(
        &self,
        input: &super::Input<'_>,
        wanted: &dyn Fn(usize) -> bool,
        out: &mut Vec<super::Finding>,
    ) {
        // The digit runs are shared by the kinds that need them, and found only if one does.
        let mut runs = None;
        let mut spans = Vec::new();
        for (i, kind) in PiiKind::ALL.into_iter().enumerate() {
            if !wanted(i) {
                continue;
            }
            spans.clear();
            let runs = runs.get_or_insert_with(|| digit_runs(input.text));
            scan_with(kind, input.text, runs, &mut spans);
            out.extend(spans.iter().map(|&(s, e)| (i, s, e)));
        }
    }
}

/// Appends the byte spans of every valid `kind` value in `text`, sorted, non-overlapping,
/// on char boundaries.
pub fn scan(kind: PiiKind, text: &str, out: &mut Vec<(usize, usize)>) {
    scan_with(kind, text, &digit_runs(text), out);
}

/// The maximal runs of ASCII digits in `text`, which every digit-based kind starts from:
/// found once per text and shared by the kinds (see [`scan_with`]).
pub fn digit_runs(text: &str) -> Vec<Span> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut pos = 0;
    while let Some(start) = next_digit(b, pos) {
        pos = digit_run_end(b, start);
        runs.push((start, pos));
    }
    runs
}

/// As [`scan`], with the text's [`digit_runs`] already found.
pub fn scan_with(kind: PiiKind, text: &str, runs: &[Span], out: &mut Vec<(usize, usize)>) {
    match kind {
        PiiKind::CreditCard => scan_digit_runs(text, runs, out, card_at),
        PiiKind::Iban => scan_digit_runs(text, runs, out, iban_at),
        PiiKind::UsSsn => scan_digit_runs(text, runs, out, ssn_at),
        PiiKind::Phone => scan_digit_runs(text, runs, out, phone_at),
        PiiKind::Email => scan_email(text, out),
        PiiKind::IpAddress => {
            let base = out.len();
            scan_digit_runs(text, runs, out, ipv4_at);
            let mut v6 = Vec::new();
            scan_ipv6(text, &mut v6);
            if v6.is_empty() {
                return;
            }
            // An IPv4 tail inside an IPv6 address (`::ffff:192.0.2.1`) yields to the longer span.
            let mut all: Vec<_> = out.drain(base..).chain(v6).collect();
            all.sort_unstable_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
            let mut last_end = 0;
            for (s, e) in all {
                if s >= last_end {
                    out.push((s, e));
                    last_end = e;
                }
            }
        }
    }
}

type Span = (usize, usize);

/// Calls `at(text, start, run_end)` at the start of every maximal run of ASCII digits. A
/// returned span is recorded and scanning resumes after it (within a run, if it ends in
/// one); otherwise after the run.
fn scan_digit_runs<F>(text: &str, runs: &[Span], out: &mut Vec<Span>, at: F)
where
    F: Fn(&str, usize, usize) -> Option<Span>,
{
    let (mut pos, mut last_end) = (0, 0);
    for &(run_start, run_end) in runs {
        if run_end <= pos {
            continue;
        }
        let start = run_start.max(pos);
        pos = run_end;
        if let Some((s, e)) = at(text, start, run_end) {
            if s >= last_end {
                out.push((s, e));
                last_end = e;
                pos = pos.max(e);
            }
        }
    }
}

/// Index of the first ASCII digit at or after `from`. Blocks of 32 bytes are tested with a
/// branch-free OR-reduction, which the compiler turns into SIMD compares.
fn next_digit(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 32 <= b.len() {
        let any = b[i..i + 32]
            .iter()
            .fold(false, |acc, c| acc | c.is_ascii_digit());
        if any {
            break;
        }
        i += 32;
    }
    b[i.min(b.len())..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|k| i + k)
}

fn digit_run_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Exactly `n` digits at `p`, not followed by another digit.
fn exact_digits(b: &[u8], p: usize, n: usize) -> bool {
    b.len() >= p + n
        && b[p..p + n].iter().all(u8::is_ascii_digit)
        && !b.get(p + n).is_some_and(u8::is_ascii_digit)
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, &c| acc * 10 + u32::from(c - b'0'))
}

fn is_word(c: char) -> bool {
    c == '_' || (c.is_alphanumeric() && (c as u32) < 0x2E80)
}

fn word_before(text: &str, i: usize) -> bool {
    text[..i].chars().next_back().is_some_and(is_word)
}

fn word_after(text: &str, i: usize) -> bool {
    text[i..].chars().next().is_some_and(is_word)
}

/// `start` follows a word character, or one of `seps` that itself follows a digit.
fn glued_left(text: &str, start: usize, seps: &[u8]) -> bool {
    let b = text.as_bytes();
    word_before(text, start)
        || (start >= 2 && seps.contains(&b[start - 1]) && b[start - 2].is_ascii_digit())
}

/// `end` precedes a word character, or one of `seps` followed by a digit.
fn glued_right(text: &str, end: usize, seps: &[u8]) -> bool {
    let b = text.as_bytes();
    word_after(text, end)
        || (end + 1 < b.len() && seps.contains(&b[end]) && b[end + 1].is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Payment cards

fn card_at(text: &str, i: usize, run_end: usize) -> Option<Span> {
    let b = text.as_bytes();
    let run = run_end - i;
    if (13..=19).contains(&run) {
        let ok = !glued_left(text, i, b"-.") && !glued_right(text, run_end, b"-.");
        return (ok && card_valid(&b[i..run_end])).then_some((i, run_end));
    }
    let sep = *b.get(run_end)?;
    if run != 4 || !matches!(sep, b' ' | b'-') || !b.get(run_end + 1)?.is_ascii_digit() {
        return None;
    }
    if glued_left(text, i, &[b'-', b'.', sep]) {
        return None;
    }
    // Up to six groups, each read to at most seven digits (no accepted group is longer).
    let mut groups = [(0, 0); 6];
    let (mut n, mut p) = (0, i);
    loop {
        let mut e = p;
        while e < b.len() && b[e].is_ascii_digit() && e - p < 7 {
            e += 1;
        }
        groups[n] = (p, e);
        n += 1;
        if n == groups.len() || e + 1 >= b.len() || b[e] != sep || !b[e + 1].is_ascii_digit() {
            break;
        }
        p = e + 1;
    }
    const PATTERNS: [&[usize]; 5] = [
        &[4, 4, 4, 4, 3],
        &[4, 4, 4, 4],
        &[4, 6, 5],
        &[4, 6, 4],
        &[4, 4, 5],
    ];
    for pat in PATTERNS {
        if pat.len() > n || pat.iter().zip(&groups).any(|(&len, &(s, e))| e - s != len) {
            continue;
        }
        let end = groups[pat.len() - 1].1;
        // A following group of four continues the grouping: the card would sit inside a longer run.
        let continues =
            pat.len() < n && sep == b' ' && groups[pat.len()].1 - groups[pat.len()].0 == 4;
        if continues || glued_right(text, end, b"-.") {
            continue;
        }
        let mut digits = [0u8; 19];
        let mut len = 0;
        for &(s, e) in &groups[..pat.len()] {
            digits[len..len + e - s].copy_from_slice(&b[s..e]);
            len += e - s;
        }
        if card_valid(&digits[..len]) {
            return Some((i, end));
        }
    }
    None
}

/// Length 13–19, not all one digit, a known IIN range with a length it issues, Luhn valid.
fn card_valid(d: &[u8]) -> bool {
    let len = d.len();
    if !(13..=19).contains(&len) || d.iter().all(|&c| c == d[0]) {
        return false;
    }
    let (p2, p3, p4) = (num(&d[..2]), num(&d[..3]), num(&d[..4]));
    let brand = (d[0] == b'4' && matches!(len, 13 | 16 | 19)) // Visa
        || (((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16) // Mastercard
        || (matches!(p2, 34 | 37) && len == 15) // Amex
        || ((p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && len >= 16) // Discover
        || ((3528..=3589).contains(&p4) && len >= 16) // JCB
        || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && len >= 14) // Diners
        || (p2 == 62 && len >= 16) // UnionPay
        || matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763); // Maestro
    brand && luhn(d)
}

fn luhn(d: &[u8]) -> bool {
    let doubled = |k: usize, c: u8| {
        let v = u32::from(c - b'0') << (k % 2);
        v - 9 * u32::from(v > 9)
    };
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &c)| doubled(k, c))
        .sum();
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------------
// IBAN

/// Country code and IBAN length, from the SWIFT IBAN registry.
const IBAN_LENGTHS: &[u8] = b"AD24AE23AL28AT20AZ28BA20BE16BG22BH22BI27BR29BY28CH21CR22CY28CZ24DE22DJ27DK18\
DO28EE20EG29ES24FI18FK18FO18FR27GB22GE22GI23GL18GR27GT28HN28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20\
LB28LC32LI21LT20LU20LV21LY25MC27MD24ME22MK19MN20MR27MT31MU30NI28NL18NO15OM23PK24PL28PS29PT25QA29RO24\
RS22RU33SA24SC31SD18SE24SI19SK24SM27SO23ST25SV28TL23TN24TR26UA29VA22VG24XK20YE30";

/// Anchored at the check digits: two uppercase letters must precede them.
fn iban_at(text: &str, i: usize, run_end: usize) -> Option<Span> {
    let b = text.as_bytes();
    if i < 2 || run_end - i < 2 || !b[i - 2].is_ascii_uppercase() || !b[i - 1].is_ascii_uppercase()
    {
        return None;
    }
    let start = i - 2;
    let len = IBAN_LENGTHS
        .chunks(4)
        .find(|e| e[..2] == b[start..i])
        .map(|e| num(&e[2..]) as usize)?;
    if word_before(text, start) || !(2..=98).contains(&num(&b[i..i + 2])) {
        return None;
    }
    // Compact, or printed in groups of four separated by single spaces (last group may be short).
    let spaced = b.get(start + 4) == Some(&b' ');
    let is_char = |c: &u8| c.is_ascii_digit() || c.is_ascii_uppercase();
    let mut buf = [0u8; 34];
    let (mut n, mut p, mut group) = (0, start, 0);
    while n < len {
        match b.get(p) {
            Some(&c) if is_char(&c) && !(spaced && group == 4) => {
                buf[n] = c;
                (n, p, group) = (n + 1, p + 1, group + 1);
            }
            Some(b' ') if spaced && group == 4 && b.get(p + 1).is_some_and(is_char) => {
                (p, group) = (p + 1, 0);
            }
            _ => return None,
        }
    }
    if word_after(text, p) {
        return None;
    }
    // ISO 7064 mod 97-10 over BBAN + country + check digits, letters as 10..=35.
    let rem = buf[4..n].iter().chain(&buf[..4]).fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    });
    (rem == 1).then_some((start, p))
}

// ---------------------------------------------------------------------------------------------
// US Social Security numbers

fn ssn_at(text: &str, i: usize, run_end: usize) -> Option<Span> {
    let b = text.as_bytes();
    let mut d = [0u8; 9];
    let (end, seps) = if run_end - i == 3 {
        let sep = *b.get(run_end)?;
        if !matches!(sep, b'-' | b' ')
            || !exact_digits(b, i + 4, 2)
            || b.get(i + 6) != Some(&sep)
            || !exact_digits(b, i + 7, 4)
        {
            return None;
        }
        d[..3].copy_from_slice(&b[i..i + 3]);
        d[3..5].copy_from_slice(&b[i + 4..i + 6]);
        d[5..].copy_from_slice(&b[i + 7..i + 11]);
        (i + 11, [b'-', b'.', sep])
    } else if run_end - i == 9 && ssn_context(b, i) {
        d.copy_from_slice(&b[i..run_end]);
        (run_end, [b'-', b'.', b'-'])
    } else {
        return None;
    };
    if glued_left(text, i, &seps) || glued_right(text, end, &seps) {
        return None;
    }
    let (area, group, serial) = (num(&d[..3]), num(&d[3..5]), num(&d[5..]));
    let valid = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    (valid && &d != b"078051120" && &d != b"219099999").then_some((i, end))
}

/// "ssn" (as a word start) or "social security" within the 32 bytes before `i`.
fn ssn_context(b: &[u8], i: usize) -> bool {
    let w = &b[i.saturating_sub(32)..i];
    w.windows(15)
        .any(|x| x.eq_ignore_ascii_case(b"social security"))
        || w.windows(3).enumerate().any(|(k, x)| {
            x.eq_ignore_ascii_case(b"ssn") && (k == 0 || !w[k - 1].is_ascii_alphabetic())
        })
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

fn phone_at(text: &str, i: usize, run_end: usize) -> Option<Span> {
    if i > 0 && text.as_bytes()[i - 1] == b'+' {
        intl_phone(text, i)
    } else {
        nanp_phone(text, i, run_end)
    }
}

/// `+` and 8–15 digits in groups split by single spaces, hyphens or dots; groups may be in
/// parentheses (`+49 (0)30 …`). A separated first group is the country code: 1–3 digits, no 0.
fn intl_phone(text: &str, i: usize) -> Option<Span> {
    let b = text.as_bytes();
    if b[i] == b'0' || glued_left(text, i - 1, b"") || (i >= 2 && b[i - 2] == b'+') {
        return None;
    }
    let (mut p, mut end, mut digits, mut groups, mut first_len) = (i, i, 0, 0, 0);
    loop {
        let paren = b[p] == b'(';
        let gs = p + usize::from(paren);
        let mut e = gs;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
            if digits + (e - gs) > 15 {
                return None;
            }
        }
        if paren {
            if e == gs || e - gs > 4 || b.get(e) != Some(&b')') {
                break;
            }
            e += 1;
        }
        digits += e - gs - usize::from(paren);
        if groups == 0 {
            first_len = e - gs;
        }
        groups += 1;
        end = e;
        let q = e + usize::from(b.get(e).is_some_and(|c| matches!(c, b' ' | b'-' | b'.')));
        match b.get(q) {
            Some(c) if c.is_ascii_digit() || *c == b'(' => p = q,
            _ => break,
        }
    }
    let ok = (8..=15).contains(&digits)
        && (groups == 1 || first_len <= 3)
        && !glued_right(text, end, b",/:");
    ok.then_some((i - 1, end))
}

/// North American `(NXX) NXX-XXXX`, `NXX-NXX-XXXX`, `NXX.NXX.XXXX`, `1-NXX-NXX-XXXX`.
fn nanp_phone(text: &str, i: usize, run_end: usize) -> Option<Span> {
    let b = text.as_bytes();
    let (start, area, p, sep) = match run_end - i {
        3 if i > 0 && b[i - 1] == b'(' => {
            if b.get(i + 3) != Some(&b')') {
                return None;
            }
            (
                i - 1,
                i,
                i + 4 + usize::from(b.get(i + 4) == Some(&b' ')),
                None,
            )
        }
        3 => (i, i, i + 4, Some(*b.get(i + 3)?)),
        1 if b[i] == b'1' && b.get(i + 1) == Some(&b'-') => {
            if !exact_digits(b, i + 2, 3) || b.get(i + 5) != Some(&b'-') {
                return None;
            }
            (i, i + 2, i + 6, Some(b'-'))
        }
        _ => return None,
    };
    let sep2 = *b.get(p + 3)?;
    if sep.is_some_and(|s| s != sep2)
        || !matches!(sep2, b'-' | b'.')
        || !exact_digits(b, p, 3)
        || !exact_digits(b, p + 4, 4)
    {
        return None;
    }
    let end = p + 8;
    let nxx = |x: usize| (b'2'..=b'9').contains(&b[x]) && &b[x + 1..x + 3] != b"11";
    let ok =
        nxx(area) && nxx(p) && !glued_left(text, start, b"-./") && !glued_right(text, end, b"-./");
    ok.then_some((start, end))
}

// ---------------------------------------------------------------------------------------------
// E-mail

fn scan_email(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let is_domain = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-');
    let is_local = |c: u8| is_domain(c) || matches!(c, b'_' | b'%' | b'+');
    let (mut pos, mut last_end) = (0, 0);
    while let Some(off) = memchr(b'@', &b[pos..]) {
        let at = pos + off;
        pos = at + 1;
        // Local part: at most 64 bytes, never reaching back into the previous match.
        let mut s = at;
        while s > last_end && at - s <= 64 && is_local(b[s - 1]) {
            s -= 1;
        }
        let left_ok = s == 0 || !(is_local(b[s - 1]) || b[s - 1] == b'@' || word_before(text, s));
        while s < at && b[s] == b'.' {
            s += 1; // sentence punctuation or an ellipsis before the address
        }
        // Domain: at most 253 bytes; trailing dots and hyphens are punctuation, not domain.
        let mut e = at + 1;
        while e < b.len() && e - at <= 254 && is_domain(b[e]) {
            e += 1;
        }
        let right_ok = e == b.len() || !(is_domain(b[e]) || b[e] == b'@' || word_after(text, e));
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let local = &b[s..at];
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local[local.len() - 1] != b'.'
            && !local.windows(2).any(|w| w == b"..");
        if left_ok && right_ok && local_ok && domain_ok(&b[at + 1..e]) {
            out.push((s, e));
            last_end = e;
            pos = e;
        }
    }
}

/// At least two labels of `[A-Za-z0-9-]{1,63}` not starting or ending with `-`; an alphabetic
/// TLD of two or more letters.
fn domain_ok(d: &[u8]) -> bool {
    if d.len() > 253 {
        return false;
    }
    let mut labels = 0;
    for label in d.split(|&c| c == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return false;
        }
        labels += 1;
    }
    let tld = d.rsplit(|&c| c == b'.').next().unwrap_or_default();
    labels >= 2 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

// ---------------------------------------------------------------------------------------------
// IP addresses

fn ipv4_at(text: &str, i: usize, _run_end: usize) -> Option<Span> {
    let b = text.as_bytes();
    if word_before(text, i) || (i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_alphanumeric()) {
        return None;
    }
    let mut p = i;
    for k in 0..4 {
        let mut e = p;
        while e < b.len() && b[e].is_ascii_digit() && e - p < 4 {
            e += 1;
        }
        let n = e - p;
        if n == 0 || n > 3 || (n > 1 && b[p] == b'0') || num(&b[p..e]) > 255 {
            return None;
        }
        p = e;
        if k < 3 {
            if b.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
    }
    (!glued_right(text, p, b".") && !version_word_before(b, i)).then_some((i, p))
}

/// `version 1.2.3.4`, `ver: 1.2.3.4`, `build=1.2.3.4`…: a dotted quad named as a version.
fn version_word_before(b: &[u8], i: usize) -> bool {
    let mut j = i;
    while j > 0 && i - j < 3 && matches!(b[j - 1], b' ' | b':' | b'=' | b'#') {
        j -= 1;
    }
    let end = j;
    while j > 0 && end - j < 9 && b[j - 1].is_ascii_alphabetic() {
        j -= 1;
    }
    const WORDS: [&[u8]; 7] = [
        b"v",
        b"ver",
        b"version",
        b"release",
        b"build",
        b"rev",
        b"firmware",
    ];
    let word = &b[j..end];
    (j == 0 || !b[j - 1].is_ascii_alphabetic())
        && WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// IPv6 in full, compressed or IPv4-suffixed form, validated by [`Ipv6Addr`]. Anchored at each
/// `:`, the surrounding run of `[0-9A-Fa-f:.]` is examined once.
fn scan_ipv6(text: &str, out: &mut Vec<Span>) {
    let b = text.as_bytes();
    let is_v6 = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
    let mut pos = 0;
    while let Some(off) = memchr(b':', &b[pos..]) {
        let colon = pos + off;
        let (mut s, mut e) = (colon, colon + 1);
        while s > pos && is_v6(b[s - 1]) {
            s -= 1;
        }
        while e < b.len() && is_v6(b[e]) {
            e += 1;
        }
        pos = e;
        while s < e && b[s] == b'.' {
            s += 1;
        }
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        if e - s >= 2 && b[s] == b':' && b[s + 1] != b':' {
            s += 1;
        }
        if e - s >= 2 && b[e - 1] == b':' && b[e - 2] != b':' {
            e -= 1;
        }
        let tok = &text[s..e];
        let colons = tok.bytes().filter(|&c| c == b':').count();
        let ok = tok.len() <= 45
            && colons >= 2
            && tok.bytes().any(|c| c.is_ascii_digit())
            && !word_before(text, s)
            && !word_after(text, e)
            && tok.parse::<Ipv6Addr>().is_ok();
        if ok {
            out.push((s, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PiiKind::*;

    /// (name, kind, text, expected matches in order, as substrings of `text`)
    type Case = (&'static str, PiiKind, &'static str, &'static [&'static str]);

    const CASES: &[Case] = &[
        // Payment cards: true positives.
        ("visa compact", CreditCard, "Card: 4111111111111111 exp 12/26", &["4111111111111111"]),
        ("visa grouped, French", CreditCard, "Numéro de carte : 4111 1111 1111 1111, merci", &["4111 1111 1111 1111"]),
        ("visa grouped, expiry follows", CreditCard, "4111 1111 1111 1111 12/26", &["4111 1111 1111 1111"]),
        ("mastercard hyphens", CreditCard, "MC 5555-5555-5555-4444.", &["5555-5555-5555-4444"]),
        ("mastercard 2-series", CreditCard, "card=2223003122003222;", &["2223003122003222"]),
        ("amex 4-6-5", CreditCard, "amex 3782 822463 10005 ok", &["3782 822463 10005"]),
        ("amex next to CJK", CreditCard, "卡号378282246310005。", &["378282246310005"]),
        ("visa 13", CreditCard, "old visa 4222222222222 here", &["4222222222222"]),
        ("discover jcb diners", CreditCard, "6011111111111117, 3530111333300000 and 30569309025904",
            &["6011111111111117", "3530111333300000", "30569309025904"]),
        ("two cards", CreditCard, "4111111111111111 5555555555554444", &["4111111111111111", "5555555555554444"]),
        // Payment cards: false positives.
        ("luhn-valid order number", CreditCard, "Order 1234567812345670 shipped", &[]),
        ("any 16 digits", CreditCard, "ref 9999888877776666 and 1111222233334444", &[]),
        ("luhn failure", CreditCard, "4111111111111112", &[]),
        ("same digit", CreditCard, "4444 4444 4444 4444", &[]),
        ("amex wrong length", CreditCard, "3782822463100050", &[]),
        ("glued letters", CreditCard, "x4111111111111111 4111111111111111x é4111111111111111", &[]),
        ("inside longer runs", CreditCard, "94111111111111111 1234 4111 1111 1111 1111 3.4111111111111111 4111111111111111-7", &[]),
        ("mixed separators", CreditCard, "4111 1111-1111 1111", &[]),
        // IBAN.
        ("gb compact", Iban, "Please wire to GB82WEST12345698765432 today", &["GB82WEST12345698765432"]),
        ("gb spaced", Iban, "IBAN: GB82 WEST 1234 5698 7654 32.", &["GB82 WEST 1234 5698 7654 32"]),
        ("de spaced, French", Iban, "IBAN : DE89 3704 0044 0532 0130 00, merci", &["DE89 3704 0044 0532 0130 00"]),
        ("de compact, German", Iban, "Überweisung an DE89370400440532013000.", &["DE89370400440532013000"]),
        ("fr nl ch be", Iban, "FR1420041010050500013M02606 NL91ABNA0417164300 CH9300762011623852957 (BE68539007547034)",
            &["FR1420041010050500013M02606", "NL91ABNA0417164300", "CH9300762011623852957", "BE68539007547034"]),
        ("bad checksum", Iban, "GB82WEST12345698765431", &[]),
        ("wrong length", Iban, "DE8937040044053201300 DE893704004405320130001", &[]),
        ("glued", Iban, "xDE89370400440532013000 DE89370400440532013000X", &[]),
        ("lowercase not accepted", Iban, "de89370400440532013000", &[]),
        ("unknown country", Iban, "ZZ89370400440532013000", &[]),
        ("bad spacing", Iban, "DE89 37040044 0532 0130 00", &[]),
        // US SSN.
        ("hyphenated", UsSsn, "Her number is 536-22-1234.", &["536-22-1234"]),
        ("spaced, French", UsSsn, "Numéro de sécurité sociale : 536 22 1234, voilà", &["536 22 1234"]),
        ("bare with context", UsSsn, "Social Security Number: 536221234; SSN=536221235", &["536221234", "536221235"]),
        ("bare without context", UsSsn, "Tracking 536221234 lessn 536221234", &[]),
        ("invalid area group serial", UsSsn, "000-12-3456 666-12-3456 912-12-3456 536-00-1234 536-22-0000", &[]),
        ("advertising numbers", UsSsn, "078-05-1120 or 219-09-9999", &[]),
        ("mixed separators", UsSsn, "536-22 1234", &[]),
        ("glued", UsSsn, "1-536-22-1234 536-22-1234-5 x536-22-1234 2024-01-15", &[]),
        // E-mail.
        ("trailing dot", Email, "mail me at a.b@example.com.", &["a.b@example.com"]),
        ("plus and hyphen", Email, "Contact: jean-luc.picard+test@starfleet.example.org, merci", &["jean-luc.picard+test@starfleet.example.org"]),
        ("underscore, accents", Email, "Écrivez à marie_curie@sorbonne.fr ! <john.doe@mail.co.uk>", &["marie_curie@sorbonne.fr", "john.doe@mail.co.uk"]),
        ("ellipsis before", Email, "see ...bob@example.com", &["bob@example.com"]),
        ("not addresses", Email, "user@localhost a@b @handle name@1.2.3.4 x@example.c", &[]),
        ("bad dots and hyphens", Email, "a..b@example.com a.@example.com bad@-example.com bad@exa--.com", &[]),
        ("glued", Email, "josé@example.com a@b.com@c.com a@example.com_x", &[]),
        // Phone.
        ("nanp forms", Phone, "Call (415) 555-0132, 415-555-0132 or 415.555.0132 or 1-800-555-0199.",
            &["(415) 555-0132", "415-555-0132", "415.555.0132", "1-800-555-0199"]),
        ("international", Phone, "+1 415 555 0132; +44 20 7946 0958; +14155550132; +49 (0)30 1234567; +1 (415) 555-0132",
            &["+1 415 555 0132", "+44 20 7946 0958", "+14155550132", "+49 (0)30 1234567", "+1 (415) 555-0132"]),
        ("international, French", Phone, "Appelez le +33 6 12 34 56 78 s’il vous plaît", &["+33 6 12 34 56 78"]),
        ("versions dates times ips", Phone, "1.2.3 10.0.19045.2965 2024-01-15 15.01.2024 192.168.1.10 12:30:45", &[]),
        ("digit runs, cards, money", Phone, "20240115123456 4111 1111 1111 1111 4111-1111-1111-1111 1,234,567.89", &[]),
        ("ssn shape", Phone, "123-45-6789", &[]),
        ("bad nanp", Phone, "123-555-0132 911-555-0132 415-155-0132 415-555.0132 415-555-01322", &[]),
        ("bad international", Phone, "+123 +0 20 7946 0958 +2024-01-15 C++14155550132 +1234567890123456", &[]),
        // IP addresses.
        ("ipv4", IpAddress, "Server at 10.0.0.1:8080, gateway 192.168.1.10. Also 0.0.0.0 and 255.255.255.255",
            &["10.0.0.1", "192.168.1.10", "0.0.0.0", "255.255.255.255"]),
        ("ipv4, French", IpAddress, "Adresse IP : 192.168.0.1, été", &["192.168.0.1"]),
        ("ipv6", IpAddress, "2001:db8::8a2e:370:7334, fe80::1 and ::1; [2001:db8::1]:443",
            &["2001:db8::8a2e:370:7334", "fe80::1", "::1", "2001:db8::1"]),
        ("ipv6 full", IpAddress, "addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", &["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]),
        ("ipv4-mapped", IpAddress, "from ::ffff:192.0.2.1 now", &["::ffff:192.0.2.1"]),
        ("versions", IpAddress, "1.2.3.4.5 v10.0.0.1 version 1.2.3.4 Build: 2.0.0.1 1.2.300.4 10.0.19045.2965", &[]),
        ("leading zeros", IpAddress, "192.168.01.1", &[]),
        ("not ipv6", IpAddress, "12:30:45 :: std::vec a::b 00:1a:2b:3c:4d:5e Note: see 1:2:3", &[]),
    ];

    fn spans_of(text: &str, expected: &[&str]) -> Vec<Span> {
        let mut from = 0;
        expected
            .iter()
            .map(|want| {
                let s = from + text[from..].find(want).expect("expected substring in text");
                from = s + want.len();
                (s, from)
            })
            .collect()
    }

    fn assert_well_formed(text: &str, spans: &[Span]) {
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlap or disorder in {spans:?}");
        }
        for &(s, e) in spans {
            assert!(s < e && text.is_char_boundary(s) && text.is_char_boundary(e));
        }
    }

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for &(name, kind, text, expected) in CASES {
            let mut got = Vec::new();
            scan(kind, text, &mut got);
            assert_well_formed(text, &got);
            let want = spans_of(text, expected);
            if got != want {
                let got: Vec<_> = got.iter().map(|&(s, e)| &text[s..e]).collect();
                failures.push(format!(
                    "{}/{name}: got {got:?}, want {expected:?}",
                    kind.id()
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn ids_round_trip() {
        for kind in PiiKind::ALL {
            assert_eq!(PiiKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(PiiKind::from_id("pii.nope"), None);
    }

    #[test]
    fn appends_after_existing_spans() {
        let mut out = vec![(0, 0)];
        scan(IpAddress, "::ffff:192.0.2.1 and 10.0.0.1", &mut out);
        assert_eq!(out, [(0, 0), (0, 16), (21, 29)]);
    }

    #[test]
    fn pathological_inputs_stay_sane() {
        let unit = [
            "0", "4", "@", ".", "1.", ":", "a@", "1:", "a.", "1-", "+1 ", "DE89", "é1",
        ];
        for unit in unit {
            let text = unit.repeat(200_000 / unit.len());
            for kind in PiiKind::ALL {
                let mut out = Vec::new();
                scan(kind, &text, &mut out);
                assert_well_formed(&text, &out);
            }
        }
    }

    #[test]
    fn next_digit_matches_naive() {
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for from in 0..bytes.len() {
            for len in [0, 1, 7, 31, 32, 33, 64, 100] {
                let b = &bytes[..(from + len).min(bytes.len())];
                let naive = b
                    .iter()
                    .skip(from)
                    .position(u8::is_ascii_digit)
                    .map(|k| from + k);
                assert_eq!(next_digit(b, from), naive);
            }
        }
    }
}
