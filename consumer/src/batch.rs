//! A batch of Kafka messages turned into what gets stored: flags, traffic counts and dead
//! letters. Runs on a worker thread: parsing, rules and sealing are the CPU-bound part.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use flagstream_rules::{Event, Origin, RuleSet, Verdict};
use time::OffsetDateTime;

use crate::config::StoreContent;
use crate::Error;
use flagstream_rules::content::{Content, Keyring};

/// One Kafka message, detached from the client so it can cross to a worker thread.
#[derive(Debug, Clone)]
pub struct Message {
    /// Shared by the batch's messages of one topic.
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// `None` for a tombstone (a message without a value).
    pub payload: Option<Vec<u8>>,
    /// The value's size when it was over `MAX_EVENT_BYTES`: `payload` then holds only its
    /// first bytes, kept for the dead letter, and the message is not evaluated.
    pub oversized: Option<usize>,
}

impl Message {
    /// Bytes of payload this message holds in memory.
    pub fn held_bytes(&self) -> usize {
        self.payload.as_ref().map_or(0, Vec::len)
    }
}

/// Where a message was read from; rows keyed by it are written at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// An event whose verdict flagged it.
#[derive(Debug)]
pub struct Flag {
    pub position: Position,
    /// What the rows store of the event: its text is dropped once `content` is made.
    pub event: Event,
    pub verdict: Verdict,
    pub categories: Vec<String>,
    /// Sealed or redacted content, per `STORE_CONTENT`.
    pub content: Option<(StoreContent, Vec<u8>)>,
}

impl Flag {
    /// Stored only for the hits of shadow-mode rules: searchable and triageable, never a
    /// finding (see the `shadow_hits` migration).
    pub fn shadow_only(&self) -> bool {
        !self.verdict.flagged
    }
}

/// What every parsed event adds to the traffic rollups.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub position: Position,
    pub minute: OffsetDateTime,
    pub provider: String,
    pub model: String,
    pub app: String,
    pub flagged: bool,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_micros: i64,
}

/// A message that could not be read as an event, kept with its reason.
#[derive(Debug)]
pub struct DeadLetter {
    pub position: Position,
    pub code: &'static str,
    pub error: String,
    /// The raw message, cut to the configured cap.
    pub payload: Vec<u8>,
    pub payload_size: usize,
}

#[derive(Debug, Default)]
pub struct Evaluated {
    pub messages: usize,
    pub flags: Vec<Flag>,
    pub traffic: Vec<Traffic>,
    pub dead_letters: Vec<DeadLetter>,
    pub rule_set_version: u64,
}

impl Evaluated {
    /// Appends a later part of the same batch, evaluated with the same rule set.
    pub fn append(&mut self, mut later: Evaluated) {
        self.messages += later.messages;
        self.flags.append(&mut later.flags);
        self.traffic.append(&mut later.traffic);
        self.dead_letters.append(&mut later.dead_letters);
    }
}

/// How flagged content is kept.
#[derive(Debug, Clone)]
pub struct Storage {
    pub mode: StoreContent,
    pub keys: Option<Keyring>,
    pub dead_letter_max_bytes: usize,
}

/// Parses and evaluates every message. Never fails on a message: what cannot be parsed
/// becomes a dead letter, so one poison message cannot stop the stream.
pub fn evaluate(
    rules: &RuleSet,
    messages: Vec<Message>,
    storage: &Storage,
) -> Result<Evaluated, Error> {
    let categories: HashMap<&str, &str> = rules
        .rules()
        .map(|r| (r.id.as_str(), r.category.as_str()))
        .collect();
    let mut out = Evaluated {
        messages: messages.len(),
        rule_set_version: rules.version(),
        ..Evaluated::default()
    };
    for message in messages {
        let position = Position {
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
        };
        let origin = Origin {
            topic: &position.topic,
            partition: position.partition,
            offset: position.offset,
        };
        let parsed = match (&message.payload, message.oversized) {
            (_, Some(size)) => Err((
                "too_large",
                format!("message is {size} bytes, more than MAX_EVENT_BYTES allows"),
            )),
            (None, None) => Err(("empty", "message has no value (a tombstone)".to_owned())),
            (Some(bytes), None) if bytes.is_empty() => {
                Err(("empty", "message value is empty".to_owned()))
            }
            (Some(bytes), None) => {
                Event::parse(bytes, Some(origin)).map_err(|e| (e.code(), e.to_string()))
            }
        };
        let mut event = match parsed {
            Ok(event) => event,
            Err((code, error)) => {
                let mut payload = message.payload.unwrap_or_default();
                let payload_size = message.oversized.unwrap_or(payload.len());
                payload.truncate(storage.dead_letter_max_bytes);
                // Held until the batch is stored: keep only what is stored.
                payload.shrink_to_fit();
                out.dead_letters.push(DeadLetter {
                    position,
                    code,
                    error: storable_text(error),
                    payload,
                    payload_size,
                });
                continue;
            }
        };
        // Before the rules and the seal, so spans, the id the content is bound to and the
        // stored row all see the same text.
        make_storable(&mut event);
        let mut verdict = rules.evaluate(&event);
        for d in &mut verdict.detections {
            d.excerpt = storable_text(std::mem::take(&mut d.excerpt));
        }
        out.traffic
            .push(traffic(&position, &event, verdict.flagged));
        if !verdict.flagged {
            // Sub-threshold enforce-mode hits are not evidence of anything; a shadow rule's
            // hits are kept so its precision can be measured.
            verdict.detections.retain(|d| d.shadow);
        }
        if !verdict.detections.is_empty() {
            let content = match storage.mode {
                StoreContent::None => None,
                StoreContent::Redacted => Some((
                    StoreContent::Redacted,
                    to_json(&Content::redacted(&event, &verdict))?,
                )),
                StoreContent::Encrypted => {
                    let keys = storage.keys.as_ref().ok_or(Error::Config(
                        "STORE_CONTENT=encrypted needs ENCRYPTION_KEY or ENCRYPTION_KEYS".into(),
                    ))?;
                    let sealed = keys.seal(&event.id, &to_json(&Content::of(&event))?)?;
                    Some((StoreContent::Encrypted, sealed))
                }
            };
            let categories: BTreeSet<&str> = verdict
                .detections
                .iter()
                .filter(|d| !d.shadow)
                .filter_map(|d| categories.get(d.rule_id.as_str()).copied())
                .collect();
            drop_text(&mut event);
            out.flags.push(Flag {
                position,
                event,
                verdict,
                categories: categories.into_iter().map(str::to_owned).collect(),
                content,
            });
        }
    }
    Ok(out)
}

/// Shows a NUL character where one was; PostgreSQL text cannot hold it.
const NUL_SIGN: &str = "\u{2400}";

/// The text with every NUL replaced by `␀`, so a row never fails to store (a failed batch
/// would be retried forever and block its partitions). Allocates only when there is a NUL.
pub fn storable_text(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', NUL_SIGN)
    } else {
        text
    }
}

/// Makes the event's fields that are stored as text storable. The prompt, system, response
/// and tool arguments keep their NULs: they are scanned as sent and stored only inside the
/// sealed or redacted content, which is bytes.
fn make_storable(event: &mut Event) {
    let fix = |s: &mut String| *s = storable_text(std::mem::take(s));
    fix(&mut event.id);
    fix(&mut event.provider);
    fix(&mut event.model);
    for s in [
        &mut event.user,
        &mut event.app,
        &mut event.team,
        &mut event.endpoint,
        &mut event.method,
    ]
    .into_iter()
    .flatten()
    {
        fix(s);
    }
}

/// Frees what the rows do not store: the text is in `content` by now, and a flag is held
/// until its batch is written (up to three batches at once), so keeping a large prompt twice
/// would double what a batch weighs.
fn drop_text(event: &mut Event) {
    event.prompt = String::new();
    event.system = None;
    event.response = None;
    event.tool_args = None;
    event.headers = None;
    event.extra = serde_json::Map::new();
}

fn to_json(content: &Content) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(content).map_err(|e| Error::Seal(e.to_string()))
}

fn traffic(position: &Position, event: &Event, flagged: bool) -> Traffic {
    // Event::parse refuses a timestamp without a UTC form, so the fallback is never taken.
    let ts = event
        .timestamp
        .checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or(event.timestamp);
    let minute = ts - time::Duration::new(i64::from(ts.second()), ts.nanosecond() as i32);
    let count = |n: Option<u64>| n.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX));
    Traffic {
        position: position.clone(),
        minute,
        provider: event.provider.clone(),
        model: event.model.clone(),
        app: event.app.clone().unwrap_or_default(),
        flagged,
        tokens_in: count(event.tokens_in),
        tokens_out: count(event.tokens_out),
        // Micro-dollars: integer sums are exact, whatever order batches land in.
        cost_micros: event
            .cost_usd
            .filter(|c| c.is_finite() && *c >= 0.0)
            .map_or(0, |c| (c * 1e6).round().min(i64::MAX as f64) as i64),
    }
}
