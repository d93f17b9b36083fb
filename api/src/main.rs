use anyhow::Context;
use clap::Parser;
use flagstream_api::{telemetry, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(&config.log_level, config.log_format);
    tracing::info!(?config, "starting flagstream-api");
    let shutdown = CancellationToken::new();
    tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
    flagstream_api::serve(config, shutdown)
        .await
        .context("flagstream-api failed")
}
