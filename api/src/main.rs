use std::io::BufRead;

use anyhow::Context;
use clap::Parser;
use flagstream_api::config::UserCommand;
use flagstream_api::{Cli, Command};
use flagstream_service::telemetry;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    telemetry::init(&config.log_level, config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing::info!(?config, "starting flagstream-api");
            let shutdown = CancellationToken::new();
            tokio::spawn(telemetry::cancel_on_signal(shutdown.clone()));
            flagstream_api::serve(config, shutdown)
                .await
                .context("flagstream-api failed")
        }
        Command::Migrate(args) => {
            println!("{}", flagstream_api::migrate(&config, &args).await?);
            Ok(())
        }
        Command::Healthcheck { url } => Ok(flagstream_api::healthcheck::probe(&url).await?),
        Command::Routes => {
            print!("{}", flagstream_api::matrix());
            Ok(())
        }
        Command::User(UserCommand::Create(user)) => {
            let password = match &user.password_env {
                Some(var) => std::env::var(var).with_context(|| format!("{var} is not set"))?,
                None => std::io::stdin()
                    .lock()
                    .lines()
                    .next()
                    .context("no password on stdin")??,
            };
            let pool = flagstream_api::connect(&config).await?;
            flagstream_api::users::create(&pool, &user.username, password, user.role, true)
                .await
                .context("failed to create the user")?;
            println!("user {} ({}) saved", user.username, user.role.as_str());
            Ok(())
        }
    }
}
