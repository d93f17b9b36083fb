//! Handlers for prefix-anchored formats: each validates one automaton candidate within a
//! window bounded by the format's maximum length.

use memchr::memmem;

use super::bytes::*;
use super::formats::*;
use super::*;

pub(super) fn tok_at(b: &[u8], s: usize, p: usize, token: &Token) -> Option<usize> {
    if !left_ok(b, s) {
        return None;
    }
    let mut e = run(b, p, token.a, usize::from(token.max));
    if matches!(token.a, Alphabet::UrlDot) {
        // A sentence-final period is punctuation, not part of the token.
        while e > p && b[e - 1] == b'.' {
            e -= 1;
        }
    }
    let n = e - p;
    if n < usize::from(token.min) || n > usize::from(token.max) || !right_ok(b, e) {
        return None;
    }
    let v = &b[p..e];
    let ok = match token.check {
        Check::No => true,
        Check::Crc => crc_ok(v),
        Check::Cls2 => classes(v) >= 2,
        Check::Cls3 => classes(v) >= 3,
        Check::Bech32 => bech32_ok(b"age-secret-key-", v),
        Check::EyJ => v.starts_with(b"eyJ"),
        Check::Pypi => {
            v.starts_with(b"AgEIcHlwaS5vcmc") || v.starts_with(b"AgENdGVzdC5weXBpLm9yZw")
        }
        Check::SepAt(c, i) => {
            v.get(usize::from(i)) == Some(&c) && v.iter().filter(|&&x| x == c).count() == 1
        }
        Check::Starts(pre) => v.starts_with(pre.as_bytes()),
        Check::Langsmith => {
            (v.starts_with(b"pt_") || v.starts_with(b"sk_"))
                && v[35] == b'_'
                && v[3..35]
                    .iter()
                    .chain(&v[36..])
                    .all(|&c| in_alphabet(Alphabet::HexL, c))
        }
        Check::Mapbox => {
            let mut parts = v.split(|&c| c == b'.');
            let (head, sig) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            parts.next().is_none() && head.len() >= 16 && sig.len() >= 20
        }
        Check::Tailscale => {
            let mut parts = v.split(|&c| c == b'-');
            let kind = parts.next().unwrap_or_default();
            let rest: Vec<&[u8]> = parts.collect();
            matches!(kind, b"api" | b"auth" | b"client" | b"scim" | b"webhook")
                && rest.len() == 2
                && rest.iter().all(|p| p.len() >= 8)
        }
    };
    ok.then_some(e)
}

pub(super) fn openai_marker(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    let floor = s.saturating_sub(320);
    let mut r = s;
    while r > floor && in_alphabet(Alphabet::Url, b[r - 1]) {
        r -= 1;
    }
    // The run may begin with `sk-`, or with a word glued by `-` such as `key-sk-…`: look for
    // the last `sk-` in it that starts at a boundary.
    let i = memmem::rfind(&b[r..s], b"sk-")?;
    sk(b, r + i).filter(|h| h.0 == Format::Openai && h.2 > s)
}

/// `sk-` is shared by OpenAI (legacy and project keys), Anthropic and OpenRouter.
pub(super) fn sk(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    if !left_ok(b, s) {
        return None;
    }
    let p = s + 3;
    if starts(b, p, b"ant-") {
        let k = p + 4;
        let le = run(b, k, Alphabet::Letters, 8);
        let de = run(b, le, Alphabet::UpDig, 2);
        if le - k < 3 || de - le != 2 || b.get(de) != Some(&b'-') {
            return None;
        }
        let e = body(b, de + 1, Alphabet::Url, 95, 95)?;
        return ends_with_at(b, e, b"AA").then_some((Format::Anthropic, s, e));
    }
    if starts(b, p, b"or-v1-") {
        let e = body(b, p + 6, Alphabet::HexL, 64, 64)?;
        return Some((Format::Openrouter, s, e));
    }
    for pre in [&b"proj-"[..], b"svcacct-", b"admin-", b"None-"] {
        if starts(b, p, pre) {
            let q = p + pre.len();
            let e = body(b, q, Alphabet::Url, 40, 300)?;
            return (classes(&b[q..e]) == 3).then_some((Format::Openai, s, e));
        }
    }
    let e = body(b, p, Alphabet::Alnum, 48, 48)?;
    (&b[p + 20..p + 28] == b"T3BlbkFJ").then_some((Format::Openai, s, e))
}

pub(super) fn xox(b: &[u8], s: usize, e: usize) -> Option<(Format, usize, usize)> {
    if !left_ok(b, s) {
        return None;
    }
    let mut p = e;
    if &b[s..e] == b"xox" {
        let c = *b.get(p)?;
        if c == b'e' && b.get(p + 1) == Some(&b'.') {
            // Rotating tokens: `xoxe.xoxp-1-…`.
            if !starts(b, p + 2, b"xox") || !matches!(b.get(p + 5), Some(b'b' | b'p')) {
                return None;
            }
            p += 6;
        } else if b"abposre".contains(&c) {
            p += 1;
        } else {
            return None;
        }
        if b.get(p) != Some(&b'-') {
            return None;
        }
        p += 1;
    }
    let end = body(b, p, Alphabet::AlnumDash, 20, 300)?;
    let v = &b[p..end];
    let last = v.rsplit(|&c| c == b'-').next().unwrap_or_default();
    (v[0].is_ascii_digit() && v.contains(&b'-') && last.len() >= 8).then_some((
        Format::SlackToken,
        s,
        end,
    ))
}

/// `EAA`: Square access tokens (`EAAA` + 60) and Facebook access tokens (`EAA…`, ≥ 100 alnum).
pub(super) fn eaa(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    if !left_ok(b, s) {
        return None;
    }
    let e = run(b, s, Alphabet::Url, 512);
    if !right_ok(b, e) {
        return None;
    }
    let v = &b[s..e];
    if v.len() == 64 && v[3] == b'A' && classes(v) == 3 {
        return Some((Format::Square, s, e));
    }
    (v.len() >= 100 && v.len() <= 512 && v.iter().all(u8::is_ascii_alphanumeric) && classes(v) == 3)
        .then_some((Format::Facebook, s, e))
}

/// PEM / OpenSSH / PGP private-key blocks. The body is followed only while it looks like
/// base64 (plain or with JSON-escaped newlines), so unrelated text between a header and a far
/// `-----END` is never swallowed, and bodies of different candidates never overlap.
pub(super) fn pem(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    let mut p = s + 10;
    if b.get(p) != Some(&b' ') {
        return None;
    }
    p += 1;
    let lab = p;
    while p < b.len() && p - lab <= 40 && (b[p].is_ascii_uppercase() || b[p] == b' ') {
        p += 1;
    }
    let label = &b[lab..p];
    if !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
        || !starts(b, p, b"-----")
    {
        return None;
    }
    p += 5;
    let lim = p.saturating_add(MAX_PEM).min(b.len());
    let mut count = 0usize;
    let mut last = p;
    let mut header_lines = 0;
    let mut line_start = true;
    while p < lim {
        let c = b[p];
        if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=') {
            if line_start && count == 0 && header_lines < 8 {
                // RFC 1421 / PGP armour headers such as `Proc-Type: 4,ENCRYPTED`.
                let le = run(b, p, Alphabet::AlnumDash, 32);
                if b.get(le) == Some(&b':') {
                    header_lines += 1;
                    while p < lim && b[p] != b'\n' && b[p] != b'\\' {
                        p += 1;
                    }
                    continue;
                }
            }
            count += 1;
            p += 1;
            last = p;
            line_start = false;
        } else if matches!(c, b'\n' | b'\r') {
            p += 1;
            line_start = true;
        } else if c == b' ' || c == b'\t' {
            p += 1;
        } else if c == b'\\' && matches!(b.get(p + 1), Some(b'n' | b'r')) {
            p += 2;
            line_start = true;
        } else {
            break;
        }
    }
    if count < 64 {
        return None;
    }
    if starts(b, p, b"-----END") {
        let tail = &b[p + 8..(p + 8 + 48).min(b.len())];
        if let Some(i) = memmem::find(tail, b"-----") {
            return Some((Format::PrivateKey, s, p + 8 + i + 5));
        }
    }
    Some((Format::PrivateKey, s, last))
}

pub(super) fn jwt(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    if s > 0 && (in_alphabet(Alphabet::Url, b[s - 1]) || b[s - 1] == b'.') {
        return None;
    }
    let he = run(b, s, Alphabet::Url, 2048);
    if he - s < 16 || he - s > 2048 || b.get(he) != Some(&b'.') {
        return None;
    }
    let ps = he + 1;
    let pe = run(b, ps, Alphabet::Url, 32 * 1024);
    if pe - ps < 8 || pe - ps > 32 * 1024 || b.get(pe) != Some(&b'.') {
        return None;
    }
    let e = body(b, pe + 1, Alphabet::Url, 16, 2048)?;
    let mut dec = Vec::with_capacity(1600);
    b64_decode(&b[s..he], &mut dec);
    if !dec.starts_with(b"{") || memmem::find(&dec, b"\"alg\"").is_none() {
        return None;
    }
    dec.clear();
    b64_decode(&b[ps..ps + 8], &mut dec);
    (dec.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{')).then_some((Format::Jwt, s, e))
}

/// Extends a URL hit back over its scheme so the span is the whole webhook URL.
pub(super) fn with_scheme(b: &[u8], s: usize) -> usize {
    if ends_with_at(b, s, b"https://") {
        s - 8
    } else if ends_with_at(b, s, b"http://") {
        s - 7
    } else {
        s
    }
}

pub(super) fn slack_hook(b: &[u8], s: usize, e: usize) -> Option<(Format, usize, usize)> {
    let start = with_scheme(b, s);
    if !left_ok(b, start) {
        return None;
    }
    let mut p = e;
    let mut kind_ok = false;
    for kind in [&b"services/"[..], b"workflows/", b"triggers/"] {
        if starts(b, p, kind) {
            p += kind.len();
            kind_ok = true;
            break;
        }
    }
    if !kind_ok {
        return None;
    }
    let mut end = p;
    let mut segs = 0;
    let mut last_len = 0;
    while segs < 6 {
        let se = run(b, end, Alphabet::Alnum, 64);
        if se == end || se - end > 64 {
            return None;
        }
        segs += 1;
        last_len = se - end;
        end = se;
        if b.get(end) == Some(&b'/') && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric) {
            end += 1;
        } else {
            break;
        }
    }
    (segs >= 3 && b[p] == b'T' && (24..=40).contains(&last_len) && right_ok(b, end)).then_some((
        Format::SlackWebhook,
        start,
        end,
    ))
}

pub(super) fn discord_hook(b: &[u8], s: usize, e: usize) -> Option<(Format, usize, usize)> {
    let mut start = if ends_with_at(b, s, b"discord.com") {
        s - 11
    } else if ends_with_at(b, s, b"discordapp.com") {
        s - 14
    } else {
        return None;
    };
    for sub in [&b"canary."[..], b"ptb."] {
        if ends_with_at(b, start, sub) {
            start -= sub.len();
        }
    }
    let start = with_scheme(b, start);
    if !left_ok(b, start) {
        return None;
    }
    let de = run(b, e, Alphabet::UpDig, 20);
    if !(17..=20).contains(&(de - e)) || !b[e..de].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.get(de) != Some(&b'/') {
        return None;
    }
    let end = body(b, de + 1, Alphabet::Url, 60, 80)?;
    Some((Format::DiscordWebhook, start, end))
}

/// Service-account JSON: `"type": "service_account"` with a `"private_key"` in the same object.
/// The span is the private key string. Escaped JSON (`\"type\": …` inside a string) is handled.
pub(super) fn gcp_sa(
    b: &[u8],
    s: usize,
    e: usize,
    st: &mut State,
) -> Option<(Format, usize, usize)> {
    if s < st.gcp_done {
        return None;
    }
    let before = &b[s.saturating_sub(24)..s];
    if !before.ends_with(b"\"") || memmem::rfind(before, b"type").is_none() {
        return None;
    }
    let lo = s.saturating_sub(4096);
    let hi = e.saturating_add(6144).min(b.len());
    st.gcp_done = hi;
    let hit = memmem::find_iter(&b[e..hi], b"private_key")
        .map(|i| e + i)
        .chain(memmem::rfind_iter(&b[lo..s], b"private_key").map(|i| lo + i))
        .find_map(|k| sa_key_value(b, k + 11))?;
    st.gcp_done = st.gcp_done.max(hit.1);
    Some((Format::GcpServiceAccount, hit.0, hit.1))
}

pub(super) fn sa_key_value(b: &[u8], mut p: usize) -> Option<(usize, usize)> {
    let escaped = starts(b, p, b"\\\"");
    p += if escaped {
        2
    } else if b.get(p) == Some(&b'"') {
        1
    } else {
        return None;
    };
    while b.get(p) == Some(&b' ') {
        p += 1;
    }
    if b.get(p) != Some(&b':') {
        return None;
    }
    p += 1;
    while b.get(p) == Some(&b' ') {
        p += 1;
    }
    let open: &[u8] = if escaped { b"\\\"" } else { b"\"" };
    if !starts(b, p, open) {
        return None;
    }
    let vs = p + open.len();
    let lim = vs.saturating_add(8192).min(b.len());
    let mut q = vs;
    while q < lim {
        if escaped {
            if starts(b, q, b"\\\"") {
                break;
            }
            q += 1;
        } else if b[q] == b'\\' {
            q += 2;
        } else if b[q] == b'"' {
            break;
        } else {
            q += 1;
        }
    }
    if q >= lim {
        return None;
    }
    memmem::find(&b[vs..q], b"PRIVATE KEY").map(|_| (vs, q))
}

pub(super) fn az_conn(b: &[u8], p: usize, f: Format, n: usize) -> Option<(Format, usize, usize)> {
    let e = run(b, p, Alphabet::B64Eq, n);
    let v = &b[p..e];
    let pad = if n == 88 { 2 } else { 1 };
    (v.len() == n
        && right_ok(b, e)
        && !v.contains(&b'_')
        && v[n - pad..].iter().all(|&c| c == b'=')
        && !v[..n - pad].contains(&b'='))
    .then_some((f, p, e))
}

/// Azure AD client secrets: 3 chars, a version digit, `Q~`, then 31–34 chars.
pub(super) fn azure_ad_value(v: &[u8]) -> bool {
    let sec = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'~' | b'.');
    (37..=40).contains(&v.len())
        && v[..3].iter().all(sec)
        && v[3].is_ascii_digit()
        && &v[4..6] == b"Q~"
        && v[6..].iter().all(|c| sec(c) || *c == b'-')
        && classes(v) == 3
}

/// Telegram bot tokens (`s` is the colon): `<8–10 digit bot id>:AA<33 base64url>`.
pub(super) fn telegram(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    let mut d = s;
    while d > 0 && s - d < 11 && b[d - 1].is_ascii_digit() {
        d -= 1;
    }
    if !(8..=10).contains(&(s - d)) || !left_ok(b, d) || !starts(b, s + 1, b"AA") {
        return None;
    }
    let e = body(b, s + 1, Alphabet::Url, 35, 35)?;
    Some((Format::TelegramBot, d, e))
}

pub(super) fn mailchimp(b: &[u8], s: usize) -> Option<(Format, usize, usize)> {
    if s < 32
        || !b[s - 32..s].iter().all(|&c| in_alphabet(Alphabet::HexL, c))
        || !left_ok(b, s - 32)
    {
        return None;
    }
    let e = body(b, s + 3, Alphabet::UpDig, 1, 2)?;
    b[s + 3..e]
        .iter()
        .all(u8::is_ascii_digit)
        .then_some((Format::Mailchimp, s - 32, e))
}

pub(super) fn terraform(b: &[u8], s: usize, e: usize) -> Option<(Format, usize, usize)> {
    if s < 14 || !b[s - 14..s].iter().all(u8::is_ascii_alphanumeric) || !left_ok(b, s - 14) {
        return None;
    }
    let end = body(b, e, Alphabet::UrlEq, 60, 70)?;
    Some((Format::TerraformCloud, s - 14, end))
}
