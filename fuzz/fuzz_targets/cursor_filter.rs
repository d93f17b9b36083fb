//! The flag search's query string (`GET /api/v1/flags`, also the export): axum's `Query`
//! extractor into `FlagQuery`, `Filter::parse` (RFC 3339 times, severities, statuses, CIDR,
//! globs), `Cursor::decode` and the SQL built for a paged search.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        flagstream_api::fuzz_flag_query(query);
    }
});
