//! Events under the `flagwise-compat` pack: FlagWise's semantics (raw text, Python case
//! folding and word classes on non-ASCII text, spans mapped back to the original). Input
//! that is no event but is text is scanned as a prompt directly.
#![no_main]

use flagstream_fuzz::{builtin, check_verdict, with_text, ORIGIN};
use flagstream_rules::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = builtin("flagwise-compat");
    let event = match Event::parse(data, Some(ORIGIN)) {
        Ok(event) => event,
        Err(_) => match std::str::from_utf8(data) {
            Ok(text) => with_text(text),
            Err(_) => return,
        },
    };
    check_verdict(&event, &rules.evaluate(&event));
});
