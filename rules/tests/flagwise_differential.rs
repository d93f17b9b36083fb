//! The `flagwise-compat` pack against FlagWise's own semantics: generated events, many of
//! them built to sit on the differences (case mapping outside ASCII, word boundaries next to
//! combining marks and `²`, Python's extra whitespace, invisible characters and base64 that
//! FlagWise never decodes), evaluated here and by `flagwise_reference.py` with Python's
//! `re`. Every event must match the same rules in both.

use std::io::Write;
use std::process::{Command, Stdio};

use flagstream_rules::{Event, Pack, RuleSet};

const FRAGMENTS: &[&str] = &[
    "hello",
    "the report",
    "Internal",
    "PASSWORD",
    "Pass word",
    "secretary",
    "api_key",
    "API_KEY",
    "private_key",
    "ConfidentialInfo",
    "classified",
    "top_secret",
    "jane.doe@example.com",
    "a@b.co",
    "x_y+z@mail.co.uk",
    "bad@host",
    "user@exa mple.com",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "41111111111111111",
    "4111\u{1c}1111\u{1c}1111\u{1c}1111",
    "4111\u{a0}1111\u{a0}1111\u{a0}1111",
    "192.168.0.1",
    "999.1.1.1",
    "10.0.0.256",
    "1.2.3.4.5",
    "555-123-4567",
    "555.123.4567",
    "5551234567",
    "(555) 123-4567",
    "555-1234567",
    "café",
    "naïve",
    "Straße",
    "İstanbul",
    "ΣΟΦΙΑΣ",
    "привет",
    "日本語",
    "\u{212a}",
    "api_\u{212a}ey",
    "ſecret",
    "\u{301}",
    "²",
    "‿",
    "prıvate_key",
    "ﬁle@ﬁrm.com",
    "ǅ@x.İO",
    "user@host.ΣΑΣ",
    "Ⅻ",
    "𝟙𝟚𝟛.𝟙.𝟙.𝟙",
    "a\u{200d}b@c.de",
    "1234\u{2028}5678",
    "_",
    "٣٣٣-٣٣٣-٣٣٣٣",
    "①",
    "pass\u{200b}word",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "cGFzc3dvcmQ6IDU1NS0xMjMtNDU2Nw==",
];
const SEPARATORS: &[&str] = &[
    " ", "", "\n", ", ", "-", ".", "_", "x", "1", "\u{301}", "\t",
];
const MODELS: &[&str] = &[
    "gpt-4",
    "GPT-4",
    "gpt-4o",
    "claude-3-opus",
    "Claude-3-Opus",
    "claude-3-opus-20240229",
    "gpt-4 ",
    "mistral-large",
];

/// xorshift64*: a fixed, dependency-free sequence.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn events(n: usize) -> Vec<(String, String)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| {
            let mut prompt = String::new();
            for _ in 0..1 + rng.below(10) {
                prompt.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                prompt.push_str(SEPARATORS[rng.below(SEPARATORS.len())]);
            }
            (prompt, MODELS[rng.below(MODELS.len())].to_owned())
        })
        .collect()
}

#[test]
fn the_compat_pack_flags_exactly_what_flagwise_flags() {
    let pack = concat!(env!("CARGO_MANIFEST_DIR"), "/packs/flagwise-compat.toml");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/flagwise_reference.py");
    let events = events(10_000);
    let mut python = Command::new("python3")
        .args([script, pack])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (3.11 or later) runs the reference");
    let mut input = String::new();
    for (prompt, model) in &events {
        input.push_str(&serde_json::json!({"prompt": prompt, "model": model}).to_string());
        input.push('\n');
    }
    let mut stdin = python.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = python.wait_with_output().expect("reference output");
    writer.join().expect("writer").expect("write events");
    assert!(output.status.success(), "the reference failed");
    let expected: Vec<Vec<String>> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON list"))
        .collect();
    assert_eq!(expected.len(), events.len());

    let set = RuleSet::build(Pack::builtin("flagwise-compat").expect("pack").rules).expect("set");
    let mut differ = Vec::new();
    let mut flagged = 0;
    for ((prompt, model), want) in events.iter().zip(&expected) {
        let body = serde_json::json!({
            "id": "e", "timestamp": 0, "src_ip": "10.0.0.1", "provider": "openai",
            "model": model, "prompt": prompt,
        });
        let event = Event::parse(body.to_string().as_bytes(), None).expect("event");
        let mut got: Vec<String> = set
            .evaluate(&event)
            .detections
            .iter()
            .map(|d| d.rule_id.clone())
            .collect();
        got.sort();
        got.dedup();
        flagged += usize::from(!got.is_empty());
        if &got != want {
            differ.push(format!(
                "{prompt:?} {model:?}: flagstream {got:?}, flagwise {want:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        events.len(),
        differ[..differ.len().min(20)].join("\n")
    );
    // The generator reaches every rule, so agreement is not agreement on nothing.
    assert!(flagged > events.len() / 2);
    for rule in set.rules() {
        assert!(
            expected.iter().any(|w| w.contains(&rule.id)),
            "{} never matched",
            rule.id
        );
    }
}
