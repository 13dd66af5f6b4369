//! The `clinic` binary: one entry point for serving, migrating, minting staff tokens,
//! verifying the log, rebuilding read models, seeding a demo clinic, and the privacy duties
//! (erasure, master key rotation, the accounting of disclosures) (api/service.md).
//! Thin: each command calls into the libraries.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clinic_domain::MemberId;
use clinic_graphql::auth::{Role, TokenKeys};
use clinic_graphql::operator;
use clinic_graphql::server::{self, AppState};
use clinic_graphql::telemetry::{self, LogFormat};
use clinic_infra::background::BackgroundTasks;
use clinic_infra::clinic::ClinicId;
use clinic_infra::config::Config;
use clinic_infra::demo::{self, DemoOptions};
use clinic_infra::event_store::{EventStore, Scope};
use clinic_infra::projections::{self, ProjectionName, RebuildOptions};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// mimalloc instead of the system allocator: a GraphQL response is built from many small
/// short-lived allocations, and glibc's malloc/free took a quarter to a third of the server's
/// CPU per dashboard request (`docs/benchmark-history.md`, fourth session).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Lifetime in seconds (up to 31 days).
        #[arg(long, default_value_t = 8 * 3600, value_parser = clap::value_parser!(i64).range(1..=31 * 24 * 3600))]
        ttl: i64,
    },
    /// Recompute every hash chain: exit 0 when intact, 1 naming the broken streams, 2 when the
    /// check could not run (as diff and grep: a monitor must tell tampering from an outage).
    Verify {
        /// Only this clinic's streams.
        #[arg(long)]
        clinic: Option<String>,
    },
    /// Rebuild read models from the start of the log into fresh tables, and swap them in when
    /// caught up (a running service keeps serving the old ones until then).
    Rebuild {
        /// Only this projection (members or groups); all of them by default.
        #[arg(long)]
        projection: Option<String>,
    },
    /// Fill a clinic with realistic generated history (referrals to alumni, groups,
    /// sessions, check-ins, follow-ups), decided by the domain's rules.
    SeedDemo {
        /// Members referred over the period (up to a million).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        members: u32,
        /// Days of history, ending today (up to ten years).
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// The clinic to fill.
        #[arg(long, default_value = "demo")]
        clinic: String,
    },
    /// Crypto-shred a member's personal data: append MemberErased, destroy their data key (a
    /// member with treatment records only after CLINIC_RETENTION_DAYS past their discharge).
    Erase {
        /// The member's id.
        #[arg(long)]
        member: Uuid,
        /// Why, without personal data ("member request", "retention expired").
        #[arg(long)]
        reason: String,
    },
    /// Re-wrap every member data key from CLINIC_MASTER_KEY to CLINIC_NEW_MASTER_KEY (the
    /// events are not touched); then restart the service with the new key.
    RotateMasterKey,
    /// Print a member's accounting of disclosures as CSV (newest first); logged as an export.
    Disclosures {
        /// The member's id.
        #[arg(long)]
        member: Uuid,
        /// The window in days (default 2190, six years; up to a century).
        #[arg(long, default_value_t = 2190, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        since_days: u32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    // verify's 1 says "tampered"; its failing to check is another answer.
    let failed = match cli.command {
        Command::Verify { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    match run(cli.command).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "clinic failed");
            eprintln!("error: {error:#}");
            failed
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
            // The service refuses a token without a subject: do not print one. The subject is
            // the actor of every event and log line the token causes, and what rosters and
            // CLINIC_STAFF_EMAILS match: no stray spaces or control characters.
            let sub = sub.trim();
            anyhow::ensure!(!sub.is_empty(), "--sub must name the staff member");
            anyhow::ensure!(
                !sub.chars().any(char::is_control),
                "--sub must not contain control characters"
            );
            let token = TokenKeys::new(&secret).sign(
                sub,
                role,
                &clinic,
                time::OffsetDateTime::now_utc(),
                time::Duration::seconds(ttl),
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { projection } => rebuild(config, projection).await,
        Command::SeedDemo {
            members,
            days,
            clinic,
        } => seed_demo(config, members, days, clinic).await,
        Command::Erase { member, reason } => {
            let pool = operator_pool(&config, 2).await?;
            let keyring = operator::keyring(&pool, operator::master_key(&config, false)?).await?;
            let member = MemberId::new(member);
            let erasure =
                operator::erase(&pool, &keyring, member, &reason, config.retention_days).await?;
            match erasure.erased_at_position {
                Some(position) => println!("member {member} erased (log position {position})"),
                None => println!("member {member} was already erased"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateMasterKey => {
            let pool = operator_pool(&config, 2).await?;
            let old = operator::master_key(&config, false)?;
            let rotation = operator::rotate(&pool, &old).await?;
            // Said as a failure: an operator who then retires the old key must not have rotated
            // an empty (or the wrong) database.
            anyhow::ensure!(
                rotation.rewrapped + rotation.already_rotated > 0,
                "this database holds no member data keys: nothing was rotated. Check \
                 DATABASE_URL before retiring the old key (a clinic's database has a key per \
                 member)"
            );
            println!(
                "re-wrapped {} data keys ({} were already under the new key); restart the \
                 service with CLINIC_MASTER_KEY set to the new key",
                rotation.rewrapped, rotation.already_rotated
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Disclosures { member, since_days } => {
            let pool = operator_pool(&config, 2).await?;
            let keyring = operator::keyring(&pool, operator::master_key(&config, false)?).await?;
            operator::disclosures_csv(
                &pool,
                &keyring,
                MemberId::new(member),
                since_days,
                std::io::stdout().lock(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { clinic } => {
            let scope = match clinic {
                Some(clinic) => Scope::Clinic(ClinicId::parse(&clinic).context("--clinic")?),
                None => Scope::All,
            };
            let pool = clinic_infra::db::connect(config.database_url.expose_secret(), 2).await?;
            let report = EventStore::new(pool).verify(&scope).await?;
            if let (Scope::Clinic(clinic), 0) = (&scope, report.streams_checked) {
                // A mistyped clinic would otherwise pass as an intact one.
                anyhow::bail!("clinic `{clinic}` has no streams: nothing was verified");
            }
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

/// The database of an operator command (erase, rotation, the accounting, rebuild): at exactly
/// this build's migrations, neither created nor migrated (`db::connect_migrated`).
async fn operator_pool(config: &Config, connections: u32) -> anyhow::Result<sqlx::PgPool> {
    clinic_infra::db::connect_migrated(config.database_url.expose_secret(), connections)
        .await
        .context("database")
}

async fn rebuild(config: Config, projection: Option<String>) -> anyhow::Result<ExitCode> {
    let projections = match projection {
        Some(name) => vec![ProjectionName::parse(&name).context("--projection")?],
        None => ProjectionName::ALL.to_vec(),
    };
    let pool = operator_pool(&config, 4).await?;
    let keyring = operator::keyring(&pool, operator::master_key(&config, false)?).await?;
    // An earlier rebuild killed mid-way (Ctrl-C) left tables with personal fields no erasure
    // reaches; this one recreates its own, and drops the others' unless they are running.
    projections::drop_abandoned_rebuilds(&pool).await?;
    let report = projections::rebuild(
        &pool,
        &keyring,
        &projections,
        &RebuildOptions::default(),
        |_| {},
    )
    .await?;
    let seconds = report.elapsed.as_secs_f64();
    println!(
        "rebuilt {}: {} events in {seconds:.1} s ({:.0} events/s), swapped in at position {}",
        projections
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        report.events,
        report.events as f64 / seconds.max(1e-9),
        report.checkpoint.position
    );
    Ok(ExitCode::SUCCESS)
}

async fn seed_demo(
    config: Config,
    members: u32,
    days: u32,
    clinic: String,
) -> anyhow::Result<ExitCode> {
    let clinic = ClinicId::parse(&clinic).context("--clinic")?;
    // A demo is made on a database of its own: created and migrated if need be.
    let pool = clinic_infra::db::connect_and_migrate(config.database_url.expose_secret(), 6)
        .await
        .context("database")?;
    // Generated people in a real clinic's append-only log could never be taken out again (an
    // erasure only shreds personal fields), and a second run would append nothing new.
    let streams: i64 = sqlx::query_scalar("SELECT count(*) FROM streams WHERE clinic = $1")
        .bind(clinic.as_str())
        .fetch_one(&pool)
        .await
        .context("database")?;
    anyhow::ensure!(
        streams == 0,
        "clinic `{clinic}` already has {streams} streams: seed-demo fills only a clinic with no \
         records (name a new one with --clinic)"
    );
    let options = DemoOptions {
        follow_up_days: config.rules.follow_up_days().to_vec(),
        ..DemoOptions::new(clinic.clone(), members, days)
    };
    let keyring = operator::keyring(&pool, operator::master_key(&config, false)?).await?;
    let report = demo::seed_demo(
        &EventStore::new(pool),
        &keyring,
        &options,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    println!(
        "clinic {clinic}: {} members, {} groups, {} events appended",
        report.members, report.groups, report.events
    );
    Ok(ExitCode::SUCCESS)
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
    let master_key = operator::master_key(&config, dev)?;
    let pool = clinic_infra::db::connect_and_migrate(
        config.database_url.expose_secret(),
        config.db_pool_size,
    )
    .await
    .context("database")?;
    let keyring = operator::keyring(&pool, master_key)
        .await
        .context("CLINIC_MASTER_KEY")?;
    // A rebuild whose process died left tables with personal fields no erasure reaches.
    if let Err(error) = clinic_infra::projections::drop_abandoned_rebuilds(&pool).await {
        let error = format!("{:#}", anyhow::Error::from(error));
        tracing::warn!(%error, "could not look for unfinished rebuilds");
    }
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("CLINIC_HTTP_ADDR: cannot listen on {}", config.http_addr))?;
    // The mail outbox (its projection, and the delivery worker when CLINIC_SMTP_URL is set),
    // told to stop as soon as the shutdown signal comes (no new email claimed while the server
    // drains, so a send in flight has the orchestrator's grace to finish; one waiting longer
    // for its server's answer is retried after its lease, README "Running it"), joined after.
    let (stop_outbox, outbox_stop) = tokio::sync::watch::channel(false);
    let outbox = clinic_infra::outbox::spawn(&pool, &keyring, &config, &outbox_stop)
        .await
        .context("mail outbox")?;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    let app = server::app(AppState::new(
        pool.clone(),
        keyring.clone(),
        TokenKeys::new(&secret),
        config.retention_days,
        config.rules.clone(),
    ));
    let background = BackgroundTasks::start(&pool, &keyring, &config);
    let shutdown = async move {
        server::shutdown_signal().await;
        let _ = stop_outbox.send(true);
    };
    server::serve(listener, app, shutdown).await?;
    background.stop().await;
    for task in outbox {
        let _ = task.await;
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
