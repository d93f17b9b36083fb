//! A batch of Kafka messages turned into what gets stored: flags and dead letters.

use flagstream_rules::{Event, Origin, RuleSet, Verdict};

/// One Kafka message, detached from the client so it can cross to a worker thread.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<Vec<u8>>,
}

/// An event whose verdict flagged it.
#[derive(Debug)]
pub struct Flag {
    pub event: Event,
    pub verdict: Verdict,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A message that could not be read as an event, kept with its reason.
#[derive(Debug)]
pub struct DeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub code: &'static str,
    pub error: String,
    /// The raw message, cut to the configured cap.
    pub payload: Vec<u8>,
    pub payload_size: usize,
}

#[derive(Debug, Default)]
pub struct Evaluated {
    pub events: usize,
    pub flags: Vec<Flag>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Parses and evaluates every message. Never fails: what cannot be parsed becomes a
/// dead letter, so one poison message cannot stop the stream.
pub fn evaluate(
    rules: &RuleSet,
    messages: Vec<Message>,
    dead_letter_max_bytes: usize,
) -> Evaluated {
    let mut out = Evaluated::default();
    for message in messages {
        let origin = Origin {
            topic: &message.topic,
            partition: message.partition,
            offset: message.offset,
        };
        let parsed = match &message.payload {
            Some(bytes) => Event::parse(bytes, Some(origin)).map_err(|e| (e.code(), e.to_string())),
            None => Err(("empty", "message has no value".to_owned())),
        };
        match parsed {
            Ok(event) => {
                out.events += 1;
                let verdict = rules.evaluate(&event);
                if verdict.flagged {
                    out.flags.push(Flag {
                        event,
                        verdict,
                        topic: message.topic,
                        partition: message.partition,
                        offset: message.offset,
                    });
                }
            }
            Err((code, error)) => {
                let mut payload = message.payload.unwrap_or_default();
                let payload_size = payload.len();
                payload.truncate(dead_letter_max_bytes);
                out.dead_letters.push(DeadLetter {
                    topic: message.topic,
                    partition: message.partition,
                    offset: message.offset,
                    code,
                    error,
                    payload,
                    payload_size,
                });
            }
        }
    }
    out
}
