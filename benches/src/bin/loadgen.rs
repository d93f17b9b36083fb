//! Produces realistic LLM gateway events to Kafka, at a steady rate or as fast as possible.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use flagstream_benches::traffic::TrafficGenerator;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::{Instant, MissedTickBehavior};

/// Flagstream traffic generator.
#[derive(Debug, Parser)]
#[command(name = "flagstream-loadgen", version)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap_servers: String,
    /// Topic to produce to.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "llm-traffic-logs")]
    topic: String,
    /// Events per second; 0 produces as fast as the broker takes them.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 20)]
    rate: u32,
    /// Events to produce; 0 runs until interrupted.
    #[arg(long, env = "LOADGEN_COUNT", default_value_t = 0)]
    count: u64,
    /// Share of events with a planted finding.
    #[arg(long, env = "LOADGEN_FLAG_RATIO", default_value_t = 0.1)]
    flag_ratio: f64,
    /// Share of messages that are not valid events.
    #[arg(long, env = "LOADGEN_MALFORMED_RATIO", default_value_t = 0.01)]
    malformed_ratio: f64,
    /// Approximate size of each event in bytes; 0 keeps prompts their natural length.
    #[arg(long, env = "LOADGEN_EVENT_BYTES", default_value_t = 0)]
    event_bytes: usize,
    /// Random seed; the same seed produces the same traffic.
    #[arg(long, env = "LOADGEN_SEED", default_value_t = 7)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("linger.ms", "5")
        .create()
        .context("failed to create the Kafka producer")?;
    let mut generator = TrafficGenerator::new(args.seed, args.flag_ratio, args.malformed_ratio);
    generator.event_bytes = args.event_bytes;
    let mut tick = (args.rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut pending = Vec::new();
    while args.count == 0 || sent < args.count {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let event = generator.next_event();
        let delivery = producer
            .send_result(FutureRecord::<(), [u8]>::to(&args.topic).payload(&event.payload))
            .map_err(|(e, _)| e)
            .context("failed to enqueue an event")?;
        pending.push(delivery);
        sent += 1;
        if pending.len() >= 1000 || tick.is_some() {
            for d in pending.drain(..) {
                d.await
                    .context("producer dropped a delivery")?
                    .map_err(|(e, _)| e)
                    .context("the broker refused an event")?;
            }
        }
    }
    for d in pending.drain(..) {
        d.await
            .context("producer dropped a delivery")?
            .map_err(|(e, _)| e)
            .context("the broker refused an event")?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {sent} events in {secs:.2} s ({:.0} events/s)",
        sent as f64 / secs
    );
    Ok(())
}
