//! A flagged event's content at rest: sealed with a rotating keyring, or redacted.
//!
//! Sealed layout: `fs1` · key-id length (1 byte) · key id · 24-byte random nonce · ciphertext
//! with its Poly1305 tag. The event id is the associated data, so a sealed blob moved to
//! another row fails to open instead of revealing the wrong event's prompt.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::{Error, Event, Field, Verdict};

const MAGIC: &[u8] = b"fs1";
const NONCE_LEN: usize = 24;

/// The text of an event that rules look at, as stored (sealed or redacted) for triage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_args: Option<String>,
}

impl Content {
    pub fn of(event: &Event) -> Content {
        Content {
            prompt: event.prompt.clone(),
            system: event.system.clone(),
            response: event.response.clone(),
            tool_args: event.tool_args.clone(),
        }
    }

    /// The content with every detection's span replaced by `[rule id]`.
    pub fn redacted(event: &Event, verdict: &Verdict) -> Content {
        let mut content = Content::of(event);
        for (field, text) in [
            (Field::Prompt, Some(&mut content.prompt)),
            (Field::System, content.system.as_mut()),
            (Field::Response, content.response.as_mut()),
            (Field::ToolArgs, content.tool_args.as_mut()),
        ] {
            let Some(text) = text else { continue };
            let mut spans: Vec<_> = verdict
                .detections
                .iter()
                .filter(|d| d.field == field && d.start < d.end && d.end <= text.len())
                .map(|d| (d.start, d.end, d.rule_id.as_str()))
                .collect();
            // Right to left, skipping overlaps, so earlier spans stay valid.
            spans.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
            let mut limit = usize::MAX;
            for (start, end, rule) in spans {
                if end > limit || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    continue;
                }
                text.replace_range(start..end, &format!("[{rule}]"));
                limit = start;
            }
        }
        content
    }
}

/// Content keys: the first seals, all open, so a key can be rotated without re-encrypting.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// From `ENCRYPTION_KEYS` (`id:base64,…`, first seals) or else `ENCRYPTION_KEY` (id
    /// `default`). None when neither is set.
    pub fn from_config(single: Option<&str>, ring: Option<&str>) -> Result<Option<Keyring>, Error> {
        let mut keys = Vec::new();
        if let Some(ring) = ring {
            for entry in ring.split(',').filter(|e| !e.trim().is_empty()) {
                let (id, key) = entry.split_once(':').ok_or_else(|| {
                    Error::Key("ENCRYPTION_KEYS entries must be id:base64key".into())
                })?;
                keys.push((id.trim().to_owned(), key.trim()));
            }
        } else if let Some(single) = single {
            keys.push(("default".to_owned(), single.trim()));
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let mut ring = Keyring { keys: Vec::new() };
        for (id, key) in keys {
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Key(
                    "an encryption key id must be 1 to 32 visible ASCII characters".into(),
                ));
            }
            // The error names the key id, never the key.
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    Error::Key(format!(
                        "encryption key `{id}` must be 32 bytes, base64-encoded"
                    ))
                })?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| Error::Key(format!("encryption key `{id}` is not usable")))?;
            ring.keys.push((id, cipher));
        }
        Ok(Some(ring))
    }

    pub fn seal(&self, event_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (id, cipher) = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: event_id.as_bytes(),
                },
            )
            .map_err(|_| Error::Seal("encryption failed".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 1 + id.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Fails closed: an unknown key id, a wrong key, another event's id or any changed byte
    /// is an error, never garbage.
    pub fn open(&self, event_id: &str, blob: &[u8]) -> Result<Vec<u8>, Error> {
        let rest = blob
            .strip_prefix(MAGIC)
            .ok_or_else(|| Error::Seal("not a sealed blob".into()))?;
        let (&id_len, rest) = rest
            .split_first()
            .ok_or_else(|| Error::Seal("truncated".into()))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(Error::Seal("truncated".into()));
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let cipher = self
            .keys
            .iter()
            .find(|(k, _)| k.as_bytes() == id)
            .map(|(_, c)| c)
            .ok_or_else(|| {
                Error::Seal(format!(
                    "sealed with key `{}`, which is not configured",
                    String::from_utf8_lossy(id)
                ))
            })?;
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: event_id.as_bytes(),
                },
            )
            .map_err(|_| Error::Seal("authentication failed: wrong key or tampered row".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    fn ring(spec: &str) -> Keyring {
        Keyring::from_config(None, Some(spec)).unwrap().unwrap()
    }

    #[test]
    fn seals_and_opens_with_rotation() {
        let old = ring(&format!("k1:{}", key(1)));
        let sealed = old.seal("evt-1", b"my prompt").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"my prompt"));
        assert_eq!(old.open("evt-1", &sealed).unwrap(), b"my prompt");

        // After rotation the new key seals and the old one still opens old rows.
        let rotated = ring(&format!("k2:{},k1:{}", key(2), key(1)));
        assert_eq!(rotated.open("evt-1", &sealed).unwrap(), b"my prompt");
        let fresh = rotated.seal("evt-2", b"x").unwrap();
        assert_eq!(&fresh[4..6], b"k2");
        assert!(old.open("evt-2", &fresh).is_err(), "k1 does not know k2");
    }

    #[test]
    fn fails_closed() {
        let k = ring(&format!("k1:{}", key(1)));
        let sealed = k.seal("evt-1", b"my prompt").unwrap();
        let wrong = ring(&format!("k1:{}", key(9)));
        assert!(wrong.open("evt-1", &sealed).is_err(), "wrong key");
        assert!(k.open("evt-2", &sealed).is_err(), "moved to another event");
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(k.open("evt-1", &tampered).is_err(), "byte {i} flipped");
        }
        assert!(k.open("evt-1", &sealed[..10]).is_err(), "truncated");
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        for spec in ["k1:c2hvcnQ=", "nocolon", ":AAAA", "k1:not base64!!"] {
            let e = Keyring::from_config(None, Some(spec)).unwrap_err();
            let text = e.to_string();
            assert!(
                !text.contains("c2hvcnQ") && !text.contains("base64!!"),
                "{text}"
            );
        }
        let single = Keyring::from_config(Some(&key(3)), None).unwrap().unwrap();
        assert_eq!(
            single.open("e", &single.seal("e", b"p").unwrap()).unwrap(),
            b"p"
        );
        assert!(Keyring::from_config(None, None).unwrap().is_none());
    }
}
