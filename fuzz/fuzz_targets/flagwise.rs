//! Events under the `flagwise-compat` pack: FlagWise's semantics (raw text, Python case
//! folding and word classes on non-ASCII text, spans mapped back to the original). Input
//! that is no event but is text is scanned as a prompt directly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flagstream_fuzz::evaluate_message("flagwise-compat", data));
