//! Where alerts go. A destination's URL (a Slack webhook URL is itself a credential) and
//! signing secret are stored sealed with the content keyring; only `display_url` (scheme
//! and host) is ever shown or logged.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::content::Keyring;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// JSON POST, HMAC-SHA256 signed when a secret is set.
    Webhook,
    /// A Slack incoming webhook, Block Kit message.
    Slack,
    /// An Alertmanager base URL; alerts go to `POST /api/v2/alerts`.
    Alertmanager,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Webhook => "webhook",
            DestinationKind::Slack => "slack",
            DestinationKind::Alertmanager => "alertmanager",
        }
    }

    pub const ALL: [DestinationKind; 3] = [
        DestinationKind::Webhook,
        DestinationKind::Slack,
        DestinationKind::Alertmanager,
    ];
}

/// The sealed part of a destination.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSecret {
    pub url: String,
    /// Signs webhook bodies; ignored by the other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for DestinationSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DestinationSecret([redacted])")
    }
}

impl DestinationSecret {
    /// Accepts absolute http(s) URLs with a host, and signing secrets of at least 16
    /// bytes. Errors never repeat the URL.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |why: &str| Error::InvalidAlertConfig(format!("destination url: {why}"));
        let rest = self
            .url
            .strip_prefix("https://")
            .or_else(|| self.url.strip_prefix("http://"))
            .ok_or_else(|| invalid("must start with http:// or https://"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(invalid("must name a host"));
        }
        if self.url.len() > 2048 || self.url.chars().any(char::is_control) {
            return Err(invalid("must be at most 2048 printable characters"));
        }
        if self.signing_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err(Error::InvalidAlertConfig(
                "destination signing_secret: at least 16 bytes".into(),
            ));
        }
        Ok(())
    }

    /// Sealed for storage, bound to the destination's id: a blob copied to another
    /// destination's row does not open.
    pub fn seal(&self, keys: &Keyring, destination_id: &str) -> Result<Vec<u8>, Error> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Seal(e.to_string()))?;
        keys.seal(&sealing_context(destination_id), &json)
    }

    pub fn open(keys: &Keyring, destination_id: &str, blob: &[u8]) -> Result<Self, Error> {
        let json = keys.open(&sealing_context(destination_id), blob)?;
        serde_json::from_slice(&json).map_err(|_| Error::Seal("not a destination secret".into()))
    }

    /// `https://hooks.slack.com/…`: what may be shown and logged of the URL.
    pub fn display_url(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // Credentials in the authority (user:pass@host) are not shown either.
        let host = authority.rsplit('@').next().unwrap_or_default();
        format!("{scheme}://{host}/…")
    }
}

fn sealing_context(destination_id: &str) -> String {
    format!("alert-destination/{destination_id}")
}

/// `v1=<hex>`: HMAC-SHA256 with the destination's secret over `"<timestamp>.<body>"`, sent
/// as `X-Flagstream-Signature` with the timestamp as `X-Flagstream-Timestamp`. Binding the
/// timestamp lets a receiver refuse replays of an old body.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("v1=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_computation() {
        // HMAC-SHA256("Jefe", "0.what do ya want for nothing?"), computed independently
        // (Python's hmac module).
        let body = b"what do ya want for nothing?";
        let sig = signature(b"Jefe", 0, body);
        assert_eq!(
            sig,
            "v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
        );
        assert_ne!(sig, signature(b"Jefe", 1, body), "the timestamp is signed");
        assert_ne!(sig, signature(b"Jeff", 0, body), "the secret is used");
    }

    #[test]
    fn secrets_seal_to_their_destination_only() {
        let keys = Keyring::from_config(Some("dGVzdC1vbmx5LWtleS1mbGFnc3RyZWFtLTMyYnl0ZXM="), None)
            .unwrap()
            .unwrap();
        let secret = DestinationSecret {
            url: "https://hooks.slack.com/services/T/B/SECRET".into(),
            signing_secret: None,
        };
        let blob = secret.seal(&keys, "slack").unwrap();
        assert!(!String::from_utf8_lossy(&blob).contains("SECRET"));
        assert_eq!(
            DestinationSecret::open(&keys, "slack", &blob).unwrap(),
            secret
        );
        assert!(DestinationSecret::open(&keys, "other", &blob).is_err());
        assert!(!format!("{secret:?}").contains("SECRET"));
    }

    #[test]
    fn urls_are_validated_and_never_shown_whole() {
        let secret = |url: &str| DestinationSecret {
            url: url.into(),
            signing_secret: None,
        };
        let slack = secret("https://hooks.slack.com/services/T000/B000/XXXXSECRET");
        slack.validate().unwrap();
        assert_eq!(slack.display_url(), "https://hooks.slack.com/…");
        assert_eq!(
            secret("http://user:pw@10.0.0.1:9093/x").display_url(),
            "http://10.0.0.1:9093/…"
        );
        for bad in [
            "ftp://x",
            "file:///etc/passwd",
            "https://",
            "javascript:alert(1)",
            "http:// x",
        ] {
            let error = secret(bad).validate().unwrap_err().to_string();
            assert!(!error.contains(bad), "{error}");
        }
        let short = DestinationSecret {
            url: "https://example.com/hook".into(),
            signing_secret: Some("short".into()),
        };
        assert!(short.validate().is_err());
    }
}
