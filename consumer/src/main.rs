use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use flagstream_consumer::config::MigrateArgs;
use flagstream_consumer::scan::{self, ScanArgs};
use flagstream_consumer::Config;
use flagstream_service::telemetry;
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    // `scan` is offline and needs none of the consumer's settings, so it is dispatched
    // before they are parsed (and required).
    let mut args = std::env::args_os();
    let command = std::env::args_os().nth(1);
    if command.as_ref().is_some_and(|a| a == "scan") {
        args.next();
        scan::run(ScanArgs::parse_from(args)).context("scan failed")?;
        return Ok(());
    }
    if command.as_ref().is_some_and(|a| a == "migrate") {
        args.next();
        let args = MigrateArgs::parse_from(args);
        let runtime =
            tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
        println!("{}", runtime.block_on(flagstream_consumer::migrate(&args))?);
        return Ok(());
    }
    let config = Config::parse().with_kafka_env(std::env::vars());
    telemetry::init(&config.log_level, config.log_format);
    tracing::info!(?config, "starting flagstream-consumer");
    let runtime = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
        let deadline = Duration::from_secs(config.shutdown_timeout_secs);
        let overdue = async {
            shutdown.cancelled().await;
            tokio::time::sleep(deadline).await;
        };
        tokio::select! {
            result = flagstream_consumer::run(config, shutdown.clone(), None) => {
                result.context("flagstream-consumer failed")
            }
            _ = overdue => anyhow::bail!("shutdown did not finish within {deadline:?}"),
        }
    })
}
