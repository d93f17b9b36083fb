//! Alerting input: a route definition (JSON, as the API stores it) compiled and matched
//! against fixed flags, with every destination's message rendered; a destination secret
//! validated and shown; and the input as a sealed destination blob, which must fail
//! closed.
#![no_main]

use std::sync::OnceLock;

use flagstream_fuzz::sample_flags;
use flagstream_rules::alert::{route, DestinationSecret, Message, Route, RouteDefinition};
use flagstream_rules::content::Keyring;
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| {
        // 32 bytes of 0x01, base64.
        Keyring::from_config(
            None,
            Some("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
        )
        .expect("keyring")
        .expect("one key")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(definition) = serde_json::from_slice::<RouteDefinition>(data) {
        if let Ok(compiled) = Route::compile(definition) {
            let routes = [compiled];
            let flags = sample_flags();
            for flag in flags {
                for r in route(&routes, flag) {
                    let key = r.group_key(flag);
                    let message = Message {
                        key: "delivery-1",
                        route: r,
                        group_key: &key,
                        flags,
                        suppressed: i64::MAX,
                        api_base_url: Some("https://flagstream.example.com/"),
                    };
                    let _ = (message.webhook(), message.slack(), message.alertmanager());
                }
            }
        }
    }
    if let Ok(secret) = serde_json::from_slice::<DestinationSecret>(data) {
        let _ = secret.validate();
        let _ = secret.display_url();
    }
    assert!(
        DestinationSecret::open(keys(), "dest-1", data).is_err(),
        "an unsealed blob opened"
    );
});
