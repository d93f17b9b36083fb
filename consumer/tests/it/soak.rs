//! The soak: steady traffic for SOAK_MINUTES (30) while consumers are SIGKILLed (10 times),
//! PostgreSQL is restarted (twice) and group members join and leave; at the end every table
//! must equal the truth of what was produced, and the memory of the consumer that ran the
//! whole time must stay flat. Not part of the suite (`#[ignore]`); `scripts/soak` runs it.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;

use crate::faults::{assert_matches, corpus_from, send_all, PrivateCluster, Truth};
use crate::procs::{free_port, start_consumer, start_tansu, Process};
use crate::support::unique;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "30 minutes; run by scripts/soak"]
async fn soak_with_kills_restarts_and_rebalances() {
    let minutes = setting("SOAK_MINUTES", 30);
    let rate = setting("SOAK_RATE", 300) as usize;
    let seed = setting("SOAK_SEED", rand::rng().random());
    eprintln!("soak: {minutes} min at {rate} events/s, seed {seed}");
    let duration = Duration::from_secs(minutes * 60);
    let partitions = 4;

    let topic = unique("soak");
    let (_broker, bootstrap) = start_tansu(&topic, partitions as u32).await;
    let port = free_port();
    let cluster = PrivateCluster::init(port);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect to the private cluster");
    flagstream_consumer::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "300000")
        .set("linger.ms", "5")
        .create()
        .expect("create producer");

    // The anchor runs throughout (its memory is the curve); the victim is killed and
    // restarted; a visitor joins and leaves the group now and then.
    let member = |group: &str| start_consumer(&url, &bootstrap, &topic, group, None);
    let anchor = member("soak");
    let mut victim = member("soak");
    let mut visitor: Option<(Process, Instant)> = None;
    let mut rng = StdRng::seed_from_u64(seed);
    let tenth = duration / 10;
    let mut kills: Vec<Duration> = (0..10)
        .map(|k| tenth * k + tenth.mul_f64(rng.random_range(0.1..0.9)))
        .collect();
    kills.reverse();
    let mut restarts = vec![duration * 2 / 3, duration / 3];
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let (mut next_join, mut next_sample) = (Duration::from_secs(90), Duration::ZERO);

    let started = Instant::now();
    let mut truth = Truth::default();
    let mut produced = 0;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < duration {
        ticks.tick().await; // pacing the load, not synchronization
        let now = started.elapsed();
        let (messages, part) = corpus_from(produced, rate, partitions, seed ^ produced as u64);
        produced += rate;
        truth += part;
        send_all(&producer, &topic, &messages).await;
        if kills.last().is_some_and(|&at| now >= at) {
            kills.pop();
            victim.kill();
            eprintln!("soak: {:>5} s  SIGKILL a consumer", now.as_secs());
            victim = member("soak");
        }
        if restarts.last().is_some_and(|&at| now >= at) {
            restarts.pop();
            eprintln!("soak: {:>5} s  PostgreSQL stopped", now.as_secs());
            PrivateCluster::run(&["stop", &cluster.dir]);
            // Down for a while, as in a failover; the consumers must wait and retry.
            tokio::time::sleep(Duration::from_secs(10)).await;
            PrivateCluster::run(&["start", &cluster.dir]);
            eprintln!(
                "soak: {:>5} s  PostgreSQL started",
                started.elapsed().as_secs()
            );
        }
        match visitor.take() {
            None if now >= next_join => {
                next_join += Duration::from_secs(180);
                eprintln!("soak: {:>5} s  a member joins", now.as_secs());
                visitor = Some((member("soak"), Instant::now()));
            }
            Some((v, since)) if since.elapsed() >= Duration::from_secs(60) => {
                eprintln!("soak: {:>5} s  a member leaves (SIGTERM)", now.as_secs());
                v.terminate().await;
            }
            other => visitor = other,
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(30);
            if let Some(kib) = anchor.rss_kib() {
                rss.push((now.as_secs(), kib));
                eprintln!(
                    "soak: {:>5} s  anchor RSS {} MiB",
                    now.as_secs(),
                    kib / 1024
                );
            }
        }
    }
    eprintln!("soak: produced {produced} messages; waiting for the consumers to catch up");
    assert_matches(&pool, truth).await;
    eprintln!("soak: every table matches the truth: {truth:?}");

    let curve: Vec<String> = rss
        .iter()
        .map(|(t, k)| format!("{t}:{}", k / 1024))
        .collect();
    eprintln!("soak: anchor RSS curve (s:MiB) {}", curve.join(" "));
    // Flat: after a minute of warm-up, the last third's peak within 25 % (or 16 MiB) of
    // the first third's.
    let warm = &rss[2.min(rss.len())..];
    let third = warm.len() / 3;
    if third > 0 {
        let peak = |s: &[(u64, u64)]| s.iter().map(|&(_, k)| k).max().unwrap_or(0);
        let (early, late) = (peak(&warm[..third]), peak(&warm[warm.len() - third..]));
        assert!(
            late <= early + (early / 4).max(16 * 1024),
            "the anchor's memory grew: {} MiB early, {} MiB late",
            early / 1024,
            late / 1024
        );
    }
    drop((anchor, victim, visitor));
}
