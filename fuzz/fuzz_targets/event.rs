//! A Kafka message value as the consumer reads it: `Event::parse`, then the default pack.
//! Covers the wire parser, provider bodies (OpenAI, Anthropic), the normalizer (invisible
//! characters, confusables) and the base64/hex/percent decoders. Input that is no event but
//! is text is scanned as a prompt and response directly, so the normalizer and decoders
//! get arbitrary text too.
#![no_main]

use flagstream_fuzz::{builtin, check_verdict, with_text, ORIGIN};
use flagstream_rules::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = builtin("default");
    let event = match Event::parse(data, Some(ORIGIN)) {
        Ok(event) => event,
        Err(_) => match std::str::from_utf8(data) {
            Ok(text) => with_text(text),
            Err(_) => return,
        },
    };
    check_verdict(&event, &rules.evaluate(&event));
});
