//! Writes synthetic flags or their detections as CSV for `COPY … FROM STDIN (FORMAT csv)`,
//! so the API benchmark can seed millions of rows in a minute. Row `i` of both tables
//! describes flag id `i`: 30 days of event times, a realistic mix of severities, statuses,
//! providers, models, apps and source networks.

use std::io::{BufWriter, Write};

use clap::{Parser, ValueEnum};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    table: Table,
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Table {
    Flags,
    Detections,
}

const MODELS: [(&str, &str); 6] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-3-opus-20240229"),
    ("google", "gemini-1.5-pro"),
    ("mistral", "mistral-large"),
];
const RULES: [(&str, &str, &str); 6] = [
    ("secret.aws", "secrets", "my key is AK**************** ok"),
    (
        "secret.github",
        "secrets",
        "token gh****************** here",
    ),
    ("pii.email", "pii", "mail jo**@******.com today"),
    ("pii.credit_card", "pii", "card 41** **** **** **11 exp"),
    (
        "injection.ignore_previous",
        "injection",
        "ig**** ******** ************ and",
    ),
    ("credentials.keywords", "credentials", "the pa****** is"),
];

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = SmallRng::seed_from_u64(args.seed);
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    // 30 days ending 2026-11-30T00:00Z, oldest first, so ids grow with time like real ingest.
    let end: i64 = 1_795_996_800;
    let span: i64 = 30 * 86_400;
    for i in 1..=args.rows {
        // The same rule for flag i in both tables, without sharing the generator's state.
        let rule = RULES[(i.wrapping_mul(2_654_435_761) >> 7) as usize % RULES.len()];
        match args.table {
            Table::Detections => {
                writeln!(out, "{i},{},prompt,10,26,\"{}\",1", rule.0, rule.2)?;
            }
            Table::Flags => {
                let t = end - span + (i as i64 * span) / args.rows as i64;
                let t = time::OffsetDateTime::from_unix_timestamp(t)
                    .map_err(std::io::Error::other)?
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(std::io::Error::other)?;
                let (provider, model) = MODELS[rng.random_range(0..MODELS.len())];
                let severity = match rng.random_range(0..10) {
                    0 => "critical",
                    1..=3 => "high",
                    4..=7 => "medium",
                    _ => "low",
                };
                let status = match rng.random_range(0..20) {
                    0..=15 => "new",
                    16 => "triaged",
                    17 => "true_positive",
                    18 => "false_positive",
                    _ => "resolved",
                };
                writeln!(
                    out,
                    "{i},ev-{i},{t},10.{}.{}.{},{provider},{model},{},{severity},{status},bench,{},{i},user-{},app-{},{{{}}},1,none",
                    rng.random_range(0..8),
                    rng.random_range(0..256),
                    rng.random_range(1..255),
                    rng.random_range(10..100),
                    i % 8,
                    rng.random_range(0..5_000),
                    rng.random_range(0..20),
                    rule.1,
                )?;
            }
        }
    }
    out.flush()
}
