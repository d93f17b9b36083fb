use anyhow::Context;
use clap::Parser;
use flagstream_consumer::{telemetry, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(&config.log_level, config.log_format);
    tracing::info!(?config, "starting flagstream-consumer");
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
    flagstream_consumer::run(config, shutdown)
        .await
        .context("flagstream-consumer failed")
}
