//! Validated secret detectors: cloud keys, API tokens, private keys, JWTs and generic
//! high-entropy values assigned to secret-like names.
//!
//! Formats (ids are `secret.<name>`): AWS access key id and secret access key (context), GitHub
//! classic (CRC32-checked) and fine-grained tokens, GitLab, OpenAI, Anthropic, OpenRouter,
//! Slack tokens and webhooks, Stripe, Google API keys, Google OAuth secrets/access tokens, GCP
//! service-account JSON, Azure storage / shared-access keys and AD client secrets, PEM/OpenSSH/PGP
//! private keys, JWTs, Twilio (context), SendGrid, Mailgun, npm (CRC32-checked), PyPI, Docker Hub,
//! Hugging Face, Databricks, Shopify, Square, Heroku, DigitalOcean, Atlassian, Postman, Linear,
//! Doppler, Vault, age (bech32-checked), Grafana, New Relic, Sentry, Datadog (context), Pulumi,
//! Terraform Cloud, Mailchimp, Telegram bots, Discord webhooks and bot tokens (context),
//! PlanetScale, Supabase, Fly.io, Alibaba, Dropbox, Facebook, Twitch (context), Okta (context),
//! Cloudflare (context), Groq, Replicate, Perplexity, xAI, Mistral (context), Cohere (context),
//! LangSmith, RubyGems, Tailscale, Mapbox, SonarQube, and `secret.generic`.
//!
//! Approach: one case-sensitive, leftmost-first Aho-Corasick automaton over at most 64
//! distinctive prefixes of four bytes or more, which is what lets its Teddy (SIMD) prefilter
//! skip clean prose at memory speed (shorter or more anchors measured 2–4x slower). Each
//! candidate is checked by hand-written byte tests bounded by the format's maximum length; no
//! regex runs over the text. Secret-like names are not automaton patterns, since words such as
//! "key" or "password" are common in prose: instead one `memchr2` pass visits each `=` / `:`
//! and looks back at the identifier before it. That assignment pass feeds `secret.generic`, the
//! context-only formats (AWS secret, Datadog, Twilio, Heroku UUID, Okta, Cloudflare, Discord bot,
//! Twitch, Mistral, Cohere: the name or the 48 bytes before it must mention the provider), Azure
//! connection-string keys and AD secrets, and the rarer prefixed formats kept out of the
//! automaton to stay within 64 patterns (`SECONDARY`: SendGrid, Hugging Face, Replicate,
//! Facebook, Mailgun, Mailchimp, Telegram, Pulumi, Supabase, Fly.io, …), which are therefore
//! only found as assigned values. Every handler examines a bounded window, or a run that later
//! candidates skip, so scanning stays linear on adversarial input.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

mod assigned;
mod bytes;
mod formats;
mod prefixed;
#[cfg(test)]
mod tests;

use assigned::*;
use bytes::*;
use formats::*;
use prefixed::*;

/// Longest value the assignment handler looks at; longer values are data, not credentials.
const MAX_VALUE: usize = 256;
/// Longest identifier the assignment handler looks at.
const MAX_IDENT: usize = 64;
/// Bytes before an identifier searched for a provider name (`[datadog]\napi_key = …`).
const CONTEXT_BEFORE: usize = 48;
/// Longest PEM body followed; 16 KiB RSA keys fit with room to spare.
const MAX_PEM: usize = 64 * 1024;

/// Detects secrets in text. Build once and share: construction compiles the automaton.
#[derive(Debug)]
pub struct SecretScanner {
    ac: Option<AhoCorasick>,
    handlers: Vec<Handler>,
}

impl Default for SecretScanner {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-call scan state that keeps every handler's work bounded and spans non-overlapping.
struct State {
    /// Per format: the earliest start a new span may have.
    next: [usize; IDS.len()],
    /// End of the last identifier examined by the name handler.
    name_done: usize,
    /// Service-account anchors before this offset were already covered by a window search.
    gcp_done: usize,
}

impl SecretScanner {
    pub fn new() -> SecretScanner {
        let pats: Vec<&str> = ANCHORS.iter().map(|(p, _)| *p).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&pats)
            .or_else(|_| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(&pats)
            });
        // The pattern set is a compile-time constant known to build; should the library ever
        // refuse it, the scanner degrades to finding nothing rather than panicking.
        let ac = ac.ok();
        SecretScanner {
            ac,
            handlers: ANCHORS.iter().map(|(_, h)| *h).collect(),
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        IDS.iter().copied()
    }

    pub fn id(&self, format: u16) -> &'static str {
        IDS.get(usize::from(format))
            .copied()
            .unwrap_or("secret.unknown")
    }

    pub fn index_of(&self, id: &str) -> Option<u16> {
        IDS.iter()
            .position(|x| *x == id)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// Appends (format index, start, end) byte spans of every secret found in `text`.
    pub fn scan(&self, text: &str, out: &mut Vec<(u16, usize, usize)>) {
        let b = text.as_bytes();
        let first = out.len();
        let mut st = State {
            next: [0; IDS.len()],
            name_done: 0,
            gcp_done: 0,
        };
        let Some(ac) = &self.ac else { return };
        for m in ac.find_iter(b) {
            let (s, e) = (m.start(), m.end());
            let Some(h) = self.handlers.get(m.pattern().as_usize()) else {
                continue;
            };
            let hit = match *h {
                Handler::Token(tok) => tok_at(b, s, e, &tok).map(|end| (tok.f, s, end)),
                Handler::Sk => sk(b, s),
                Handler::OpenaiMarker => openai_marker(b, s),
                Handler::Xox => xox(b, s, s + 3),
                Handler::Eaa => eaa(b, s),
                Handler::Pem => pem(b, s),
                Handler::Jwt => jwt(b, s),
                Handler::SlackHook => slack_hook(b, s, e),
                Handler::DiscordHook => discord_hook(b, s, e),
                Handler::GcpSa => gcp_sa(b, s, e, &mut st),
                Handler::Sub(subs) => subs
                    .iter()
                    .find(|(p, _)| starts(b, e, p.as_bytes()))
                    .and_then(|(p, tok)| tok_at(b, s, e + p.len(), tok).map(|end| (tok.f, s, end))),
                Handler::Back(pres) => pres
                    .iter()
                    .find(|(p, _)| ends_with_at(b, s, p.as_bytes()))
                    .and_then(|(p, tok)| {
                        let st = s - p.len();
                        tok_at(b, st, e, tok).map(|end| (tok.f, st, end))
                    }),
                Handler::Terraform => terraform(b, s, e),
            };
            if let Some(hit) = hit {
                push(text, &mut st.next, out, hit);
            }
        }
        // The assignment pass keeps its own per-format order. Only Terraform tokens can be
        // reported by both passes, and then with the same span, removed by the dedup below.
        st.next.iter_mut().for_each(|n| *n = 0);
        let mut hits = Vec::new();
        assignments(b, &mut st, &mut hits);
        for hit in hits {
            push(text, &mut st.next, out, hit);
        }
        let mut found = out.split_off(first);
        drop_shadowed_generic(&mut found);
        found.sort_unstable_by_key(|&(f, s, e)| (s, e, f));
        found.dedup();
        out.append(&mut found);
    }
}

/// Records a span unless it overlaps the previous one of its format or is not on char
/// boundaries (handlers only end spans at ASCII bytes, so this is a safety net).
fn push(
    text: &str,
    next: &mut [usize],
    out: &mut Vec<(u16, usize, usize)>,
    hit: (Format, usize, usize),
) {
    let (f, s, e) = hit;
    if s < e && s >= next[f as usize] && text.is_char_boundary(s) && text.is_char_boundary(e) {
        next[f as usize] = e;
        out.push((f as u16, s, e));
    }
}

/// A generic hit that overlaps a specific format's hit adds nothing but noise: drop it.
fn drop_shadowed_generic(found: &mut Vec<(u16, usize, usize)>) {
    let g = Format::Generic as u16;
    if !found.iter().any(|x| x.0 == g) || found.iter().all(|x| x.0 == g) {
        return;
    }
    let mut spec: Vec<(usize, usize)> = found
        .iter()
        .filter(|x| x.0 != g)
        .map(|x| (x.1, x.2))
        .collect();
    spec.sort_unstable();
    let mut max_end = Vec::with_capacity(spec.len());
    let mut m = 0;
    for &(_, e) in &spec {
        m = m.max(e);
        max_end.push(m);
    }
    found.retain(|&(f, s, e)| {
        if f != g {
            return true;
        }
        let i = spec.partition_point(|&(ss, _)| ss < e);
        i == 0 || max_end[i - 1] <= s
    });
}
