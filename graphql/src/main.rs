//! The `clinic` binary: one entry point for serving, migrating, minting staff tokens and
//! verifying the log (api/service.md). Thin: each command calls into the libraries.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clinic_graphql::auth::{Role, TokenKeys};
use clinic_graphql::server::{self, AppState};
use clinic_graphql::telemetry::{self, LogFormat};
use clinic_infra::clinic::ClinicId;
use clinic_infra::config::Config;
use clinic_infra::event_store::{EventStore, Scope};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Parser)]
#[command(name = "clinic", version, about = "Recovery clinic operations service")]
struct Cli {
    /// Log output: human on a terminal and JSON otherwise (auto), or forced.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database if missing, migrate, and serve HTTP until SIGTERM/SIGINT.
    Serve {
        /// Allow starting without CLINIC_JWT_SECRET: a random one is generated and an admin
        /// token for clinic `demo` is printed. Never in production.
        #[arg(long)]
        dev: bool,
    },
    /// Create the database if missing, run the migrations and exit.
    Migrate,
    /// Print a signed staff token (needs CLINIC_JWT_SECRET).
    Token {
        /// The staff member's name or id (recorded as the actor).
        #[arg(long)]
        sub: String,
        /// admin, clinician, facilitator, intake or auditor.
        #[arg(long)]
        role: Role,
        /// The clinic the token is for.
        #[arg(long)]
        clinic: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl: i64,
    },
    /// Recompute every hash chain; exit 1 and name the broken streams if any.
    Verify {
        /// Only this clinic's streams.
        #[arg(long)]
        clinic: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "clinic failed");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let config = Config::from_env().context("invalid configuration")?;
    match command {
        Command::Serve { dev } => serve(config, dev).await,
        Command::Migrate => {
            clinic_infra::db::connect_and_migrate(config.database_url.expose_secret(), 2).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            sub,
            role,
            clinic,
            ttl,
        } => {
            let secret = config
                .jwt_secret
                .context("CLINIC_JWT_SECRET must be set to sign tokens")?;
            let clinic = ClinicId::parse(&clinic).context("--clinic")?;
            anyhow::ensure!(ttl > 0, "--ttl must be positive");
            let token = TokenKeys::new(&secret).sign(
                &sub,
                role,
                &clinic,
                time::OffsetDateTime::now_utc(),
                time::Duration::seconds(ttl),
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { clinic } => {
            let scope = match clinic {
                Some(clinic) => Scope::Clinic(ClinicId::parse(&clinic).context("--clinic")?),
                None => Scope::All,
            };
            let pool = clinic_infra::db::connect(config.database_url.expose_secret(), 2).await?;
            let report = EventStore::new(pool).verify(&scope).await?;
            println!(
                "streams checked: {}, events checked: {}",
                report.streams_checked, report.events_checked
            );
            if report.ok() {
                println!("ok: every hash chain is intact");
                Ok(ExitCode::SUCCESS)
            } else {
                for stream in &report.broken_streams {
                    println!("BROKEN {stream}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

async fn serve(config: Config, dev: bool) -> anyhow::Result<ExitCode> {
    let secret = match (config.jwt_secret.clone(), dev) {
        (Some(secret), _) => secret,
        (None, true) => {
            let secret = SecretString::from(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
            let token = TokenKeys::new(&secret).sign(
                "dev-admin",
                Role::Admin,
                &ClinicId::parse("demo").context("demo clinic id")?,
                time::OffsetDateTime::now_utc(),
                time::Duration::hours(12),
            );
            tracing::warn!("--dev: generated a random CLINIC_JWT_SECRET for this run only");
            eprintln!("dev admin token for clinic `demo` (12 h):\n{token}");
            secret
        }
        (None, false) => anyhow::bail!(
            "CLINIC_JWT_SECRET is not set: set it, or pass --dev for a throwaway local run"
        ),
    };
    let pool = clinic_infra::db::connect_and_migrate(config.database_url.expose_secret(), 16)
        .await
        .context("database")?;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("CLINIC_HTTP_ADDR: cannot listen on {}", config.http_addr))?;
    // The mail outbox (its projection, and the delivery worker when CLINIC_SMTP_URL is set),
    // stopped after the server has drained.
    let (stop_outbox, outbox_stop) = tokio::sync::watch::channel(false);
    let outbox = clinic_infra::outbox::spawn(&pool, &config, &outbox_stop)
        .await
        .context("mail outbox")?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let app = server::app(AppState::new(pool.clone(), TokenKeys::new(&secret)));
    server::serve(listener, app, server::shutdown_signal()).await?;
    let _ = stop_outbox.send(true);
    for task in outbox {
        let _ = task.await;
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
