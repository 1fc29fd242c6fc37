//! `vigil events serve` and `vigil events import`.

use std::process::ExitCode;

use anyhow::Context as _;
use vigil::cli::EventsCommand;
use vigil::events;

use super::failure::UsageError;

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

pub async fn run(command: EventsCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Serve {
            config,
            listen,
            token_env,
        } => {
            let settings = super::load_settings(&config)?;
            let token = std::env::var(&token_env)
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    UsageError(format!(
                        "--token-env {token_env}: the variable is not set or empty"
                    ))
                })?;
            let server = events::Server::bind(settings, listen, token, None, terminated())
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!("listening on {}", server.addr);
            server.wait().await;
            Ok(ExitCode::SUCCESS)
        }
        EventsCommand::Import {
            file,
            config,
            subscription,
            registry,
        } => {
            let settings = super::load_settings(&config)?;
            let tally = events::import(&settings, &subscription, &registry, &file).await?;
            println!("{}", serde_json::to_string(&tally)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
