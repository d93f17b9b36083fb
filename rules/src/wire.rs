//! The message as it arrives: every field Flagstream reads in a slot of its own, the rest
//! kept as sent. Filled in one pass over the JSON, so known fields never go through an object
//! map (building one and taking the fields back out was a third of the parsing time).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

macro_rules! wire {
    ($($field:ident),* $(,)?) => {
        /// A message's top-level fields; a later duplicate key replaces an earlier one, as in
        /// a JSON object map.
        #[derive(Debug, Default)]
        pub(crate) struct Wire {
            $(pub $field: Option<Value>,)*
            /// Fields Flagstream does not know.
            pub extra: Map<String, Value>,
        }

        /// The names of [`Wire`]'s slots.
        const KNOWN: &[&str] = &[$(stringify!($field)),*];

        impl Wire {
            fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
                match key {
                    $(stringify!($field) => Some(&mut self.$field),)*
                    _ => None,
                }
            }
        }
    };
}

wire!(
    id,
    timestamp,
    src_ip,
    provider,
    model,
    prompt,
    system,
    messages,
    response,
    user,
    app,
    team,
    tokens_in,
    tokens_out,
    cost_usd,
    endpoint,
    method,
    headers,
    duration_ms,
    status_code,
);

/// A message's top-level JSON value: an object's fields, or `None` for any other value
/// (which is no event).
pub(crate) struct Top(pub Option<Wire>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Top, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut wire = Wire::default();
        while let Some(Key(key)) = map.next_key()? {
            let value: Value = map.next_value()?;
            match key {
                KeyName::Known(name) => {
                    if let Some(slot) = wire.slot(name) {
                        *slot = Some(value);
                    }
                }
                KeyName::Other(name) => {
                    wire.extra.insert(name, value);
                }
            }
        }
        Ok(Top(Some(wire)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top(None))
    }
}

/// A top-level key: one of [`Wire`]'s fields (read without allocating), or another name.
struct Key(KeyName);

enum KeyName {
    Known(&'static str),
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(Key(match KNOWN.iter().find(|k| **k == key) {
            Some(known) => KeyName::Known(known),
            None => KeyName::Other(key.to_owned()),
        }))
    }
}
