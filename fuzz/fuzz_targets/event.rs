//! A Kafka message value as the consumer reads it: `Event::parse`, then the default pack.
//! Covers the wire parser, provider bodies (OpenAI, Anthropic), the normalizer (invisible
//! characters, confusables) and the base64/hex/percent decoders. Input that is no event but
//! is text is scanned as a prompt and response directly, so the normalizer and decoders
//! get arbitrary text too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flagstream_fuzz::evaluate_message("default", data));
