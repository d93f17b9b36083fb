//! The assignment handler: `name = value` pairs feed the generic detector, the
//! context-only formats and the prefixed formats kept out of the automaton (`SECONDARY`).

use super::bytes::*;
use super::formats::*;
use super::prefixed::*;
use super::*;

pub(super) fn ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Lower-cased words of an identifier: split at `_ - .` and at lower→upper humps.
pub(super) fn words(id: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    let mut prev = 0u8;
    for &c in id {
        if matches!(c, b'_' | b'-' | b'.') {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            if c.is_ascii_uppercase()
                && (prev.is_ascii_lowercase() || prev.is_ascii_digit())
                && !cur.is_empty()
            {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c.to_ascii_lowercase());
        }
        prev = c;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Names whose value is a credential, compared against the last one or two words joined.
pub(super) const SECRET_NAMES: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"pass",
    b"pwd",
    b"passphrase",
    b"secret",
    b"token",
    b"apikey",
    b"secretkey",
    b"accesskey",
    b"privatekey",
    b"authkey",
    b"encryptionkey",
    b"signingkey",
    b"masterkey",
    b"sessionkey",
    b"sharedkey",
    b"clientkey",
    b"appkey",
    b"secretaccesskey",
];

/// Qualifiers that turn a secret-sounding name into a non-secret one (`max_tokens`,
/// `next_token`, `csrf_token`…).
pub(super) const NOT_SECRET_QUALIFIERS: &[&[u8]] = &[
    b"next",
    b"page",
    b"csrf",
    b"xsrf",
    b"max",
    b"num",
    b"input",
    b"output",
    b"total",
    b"count",
    b"sync",
    b"continuation",
    b"cursor",
    b"public",
    b"pub",
    b"device",
    b"push",
    b"reset",
    b"forgot",
    b"show",
    b"has",
    b"is",
    b"use",
    b"verify",
    b"cancel",
    b"cache",
    b"idempotency",
];

pub(super) fn secret_name(ws: &[Vec<u8>]) -> bool {
    let n = ws.len();
    for k in 1..=2.min(n) {
        let joined: Vec<u8> = ws[n - k..].concat();
        if SECRET_NAMES.contains(&joined.as_slice()) {
            let qual = n.checked_sub(k + 1).map(|i| ws[i].as_slice());
            return !qual.is_some_and(|q| NOT_SECRET_QUALIFIERS.contains(&q));
        }
    }
    false
}

pub(super) const AGE: Token = token(Format::Age, Alphabet::UpDig, 58, 58, Check::Bech32);
pub(super) const TAILSCALE: Token = token(
    Format::Tailscale,
    Alphabet::AlnumDash,
    20,
    128,
    Check::Tailscale,
);
pub(super) const MAILGUN: Token = token(Format::Mailgun, Alphabet::HexL, 32, 32, Check::No);

/// A value that is itself a known token: formats reached only through assignments.
pub(super) fn known_value(b: &[u8], id: &[u8], vs: usize, ve: usize) -> Option<Format> {
    let v = &b[vs..ve];
    let exact = |hit: Option<usize>| hit == Some(ve);
    match id {
        b"AccountKey" => {
            return az_conn(b, vs, Format::AzureStorageKey, 88)
                .filter(|h| h.2 == ve)
                .map(|h| h.0);
        }
        b"SharedAccessKey" => {
            return az_conn(b, vs, Format::AzureSharedAccessKey, 44)
                .filter(|h| h.2 == ve)
                .map(|h| h.0);
        }
        _ => {}
    }
    for (p, tok) in SECONDARY {
        if v.starts_with(p.as_bytes()) && exact(tok_at(b, vs, vs + p.len(), tok)) {
            return Some(tok.f);
        }
    }
    if v.len() >= 36 && &v[32..35] == b"-us" && mailchimp(b, vs + 32).is_some_and(|h| h.2 == ve) {
        return Some(Format::Mailchimp);
    }
    let colon = v.iter().position(|&c| c == b':');
    if colon.is_some_and(|c| telegram(b, vs + c).is_some_and(|h| h.1 == vs && h.2 == ve)) {
        return Some(Format::TelegramBot);
    }
    if v.len() > 23
        && &v[14..23] == b".atlasv1."
        && terraform(b, vs + 14, vs + 23).is_some_and(|h| h.2 == ve)
    {
        return Some(Format::TerraformCloud);
    }
    if v.starts_with(b"EAA") && eaa(b, vs).is_some_and(|h| h.2 == ve) {
        return eaa(b, vs).map(|h| h.0);
    }
    azure_ad_value(v).then_some(Format::AzureAdClientSecret)
}

/// Last words of names worth parsing an assignment for; anything else is skipped in O(1).
pub(super) const NAME_ENDS: &[&[u8]] = &[
    b"key",
    b"token",
    b"secret",
    b"pass",
    b"password",
    b"passwd",
    b"pwd",
    b"passphrase",
];

/// Assignments: every `=` / `:` (found with `memchr2`, which runs at memory speed on prose)
/// whose left side is an identifier ending in a secret-like word.
pub(super) fn assignments(b: &[u8], st: &mut State, hits: &mut Vec<(Format, usize, usize)>) {
    for o in memchr::memchr2_iter(b'=', b':', b) {
        if o < st.name_done {
            continue;
        }
        let mut p = o;
        while p > 0 && o - p < 8 && matches!(b[p - 1], b' ' | b'\t') {
            p -= 1;
        }
        if p > 0 && b[p - 1] == b']' {
            p -= 1;
        }
        if p > 0 && matches!(b[p - 1], b'"' | b'\'') {
            p -= 1;
            if p > 0 && b[p - 1] == b'\\' {
                p -= 1;
            }
        }
        let ie = p;
        let floor = ie.saturating_sub(MAX_IDENT + 1);
        let mut is = ie;
        while is > floor && ident_byte(b[is - 1]) {
            is -= 1;
        }
        let id = &b[is..ie];
        if id.is_empty()
            || id.len() > MAX_IDENT
            || !NAME_ENDS
                .iter()
                .any(|w| id.len() >= w.len() && id[id.len() - w.len()..].eq_ignore_ascii_case(w))
        {
            continue;
        }
        if let Some(h) = name(b, is, ie, st) {
            hits.push(h);
        }
    }
}

pub(super) fn name(
    b: &[u8],
    is: usize,
    ie: usize,
    st: &mut State,
) -> Option<(Format, usize, usize)> {
    let (vs, ve) = match assigned_value(b, ie) {
        Ok(span) => span,
        Err(scanned) => {
            // Whatever was scanned as a would-be value holds no assignment worth revisiting.
            st.name_done = st.name_done.max(scanned);
            return None;
        }
    };
    st.name_done = st.name_done.max(ve);
    let id = &b[is..ie];
    let v = &b[vs..ve];
    if let Some(f) = known_value(b, id, vs, ve) {
        return Some((f, vs, ve));
    }
    let ws = words(id);
    let ctx_lo = is.saturating_sub(CONTEXT_BEFORE);
    let has = |w: &[u8]| contains_ci(id, w) || contains_ci(&b[ctx_lo..is], w);
    let first = ws.first().map(Vec::as_slice).unwrap_or_default();
    let f = if contains_ci(id, b"secret")
        && has(b"aws")
        && v.len() == 40
        && v.iter()
            .all(|&c| in_alphabet(Alphabet::B64Eq, c) && c != b'=' && c != b'_')
        && classes(v) >= 2
    {
        Some(Format::AwsSecretAccessKey)
    } else if (has(b"datadog") || first == b"dd")
        && (v.len() == 32 || v.len() == 40)
        && v.iter().all(|&c| in_alphabet(Alphabet::HexL, c))
    {
        Some(Format::Datadog)
    } else if has(b"twilio")
        && v.len() == 32
        && v.iter().all(u8::is_ascii_alphanumeric)
        && classes(v) >= 2
    {
        Some(Format::Twilio)
    } else if has(b"heroku") && is_uuid(v) {
        Some(Format::Heroku)
    } else if has(b"okta")
        && v.len() == 42
        && v.starts_with(b"00")
        && v.iter().all(|&c| in_alphabet(Alphabet::Url, c))
    {
        Some(Format::Okta)
    } else if (has(b"cloudflare") || first == b"cf")
        && ((v.len() == 40 && v.iter().all(|&c| in_alphabet(Alphabet::Url, c)) && classes(v) >= 2)
            || (v.len() == 37 && v.iter().all(|&c| in_alphabet(Alphabet::HexL, c))))
    {
        Some(Format::Cloudflare)
    } else if has(b"discord") && discord_bot(v) {
        Some(Format::DiscordBotToken)
    } else if has(b"twitch")
        && v.len() == 30
        && v.iter().all(|&c| in_alphabet(Alphabet::LowDig, c))
        && classes(v) >= 2
    {
        Some(Format::Twitch)
    } else if has(b"mistral")
        && v.len() == 32
        && v.iter().all(u8::is_ascii_alphanumeric)
        && classes(v) >= 2
    {
        Some(Format::Mistral)
    } else if (has(b"cohere") || first == b"co")
        && v.len() == 40
        && v.iter().all(u8::is_ascii_alphanumeric)
        && classes(v) >= 2
    {
        Some(Format::Cohere)
    } else if secret_name(&ws) && generic_value(v) {
        Some(Format::Generic)
    } else {
        None
    };
    f.map(|f| (f, vs, ve))
}

pub(super) fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Discord bot tokens: base64(user id) `.` 6-char timestamp `.` 27–38-char HMAC.
pub(super) fn discord_bot(v: &[u8]) -> bool {
    let parts: Vec<&[u8]> = v.split(|&c| c == b'.').collect();
    parts.len() == 3
        && matches!(parts[0].first(), Some(b'M' | b'N' | b'O'))
        && (23..=28).contains(&parts[0].len())
        && parts[1].len() == 6
        && (27..=40).contains(&parts[2].len())
        && parts
            .iter()
            .all(|p| p.iter().all(|&c| in_alphabet(Alphabet::Url, c)))
}

/// Parses `<quote>? ws (= | : | => | :=) ws <value>` after an identifier ending at `p`.
/// Returns the value span, without quotes.
pub(super) fn assigned_value(b: &[u8], mut p: usize) -> Result<(usize, usize), usize> {
    if starts(b, p, b"\\\"") {
        p += 2;
    } else if matches!(b.get(p), Some(b'"' | b'\'')) {
        p += 1;
    }
    if b.get(p) == Some(&b']') {
        p += 1;
    }
    let skip_ws = |mut p: usize| {
        let lim = (p + 8).min(b.len());
        while p < lim && matches!(b[p], b' ' | b'\t') {
            p += 1;
        }
        p
    };
    p = skip_ws(p);
    match (b.get(p), b.get(p + 1)) {
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => p += 2,
        (Some(b'='), Some(b'=' | b'~')) | (Some(b':'), Some(b':')) => return Err(p),
        (Some(b'=' | b':'), _) => p += 1,
        _ => return Err(p),
    }
    p = skip_ws(p);
    let (open, close): (&[u8], &[u8]) = if starts(b, p, b"\\\"") {
        (b"\\\"", b"\\\"")
    } else {
        match b.get(p) {
            Some(b'"') => (b"\"", b"\""),
            Some(b'\'') => (b"'", b"'"),
            Some(b'`') => (b"`", b"`"),
            _ => (b"", b""),
        }
    };
    let vs = p + open.len();
    let lim = vs.saturating_add(MAX_VALUE + 1).min(b.len());
    if open.is_empty() {
        let mut q = vs;
        while q < lim
            && !b[q].is_ascii_whitespace()
            && !matches!(
                b[q],
                b',' | b';'
                    | b'&'
                    | b')'
                    | b']'
                    | b'}'
                    | b'"'
                    | b'\''
                    | b'<'
                    | b'>'
                    | b'('
                    | b'['
                    | b'{'
            )
        {
            q += 1;
        }
        if q == lim && q < b.len() {
            return Err(q);
        }
        // `name = value(...)` or `name = value[...]` is code, not a literal.
        if matches!(b.get(q), Some(b'(' | b'[' | b'{' | b'<')) || q == vs {
            return Err(q);
        }
        return Ok((vs, q));
    }
    let mut q = vs;
    while q < lim && !starts(b, q, close) && b[q] != b'\n' {
        q += if b[q] == b'\\' && close != b"\\\"" {
            2
        } else {
            1
        };
    }
    if q < lim && starts(b, q, close) && q > vs {
        Ok((vs, q))
    } else {
        Err(q.min(b.len()))
    }
}

pub(super) fn entropy(v: &[u8]) -> f64 {
    let mut counts = [0u16; 256];
    for &c in v {
        counts[usize::from(c)] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

pub(super) const PLACEHOLDERS: &[&[u8]] = &[
    b"example",
    b"your",
    b"change",
    b"placeholder",
    b"xxxx",
    b"****",
    b"...",
    b"redact",
    b"dummy",
    b"sample",
    b"insert",
    b"replace",
    b"password",
    b"secret",
    b"token",
    b"process.env",
    b"environ",
    b"getenv",
    b"env.",
    b"env[",
    b"${",
    b"{{",
    b"$(",
    b"%(",
    b"%s",
    b"todo",
    b"fixme",
    b"undefined",
    b"12345678",
    b"abcdef",
    b"qwerty",
    b"<",
    b">",
    b"fake",
    b"test",
    b"foobar",
];

/// A literal that looks like a real credential rather than a placeholder, variable or path.
pub(super) fn generic_value(v: &[u8]) -> bool {
    let n = v.len();
    if !(8..=MAX_VALUE).contains(&n) || v.iter().any(|&c| c.is_ascii_whitespace() || c == 0) {
        return false;
    }
    if matches!(v[0], b'$' | b'%' | b'@' | b'/' | b'~' | b'#' | b'&' | b'*')
        || v.starts_with(b"./")
        || v.starts_with(b"http")
    {
        return false;
    }
    if PLACEHOLDERS.iter().any(|p| contains_ci(v, p)) {
        return false;
    }
    let letters_only = v
        .iter()
        .all(|&c| c.is_ascii_alphabetic() || matches!(c, b'_' | b'.' | b'-'));
    if letters_only && (n < 20 || classes(v) < 2 || v.contains(&b'.')) {
        return false;
    }
    let symbol = v.iter().any(|c| c.is_ascii_punctuation());
    if classes(v) + usize::from(symbol) < 2 {
        return false;
    }
    let need = (n as f64).log2().mul_add(0.85, 0.0).min(3.0);
    entropy(v) >= need
}
