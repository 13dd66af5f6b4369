//! Tracing set-up: `RUST_LOG` filters (default [`DEFAULT_FILTER`]); human-readable output on a
//! terminal, one JSON object per line otherwise (for log shippers), or as forced by
//! `--log-format`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The filter when `RUST_LOG` is unset or unreadable: `info`, but PostgreSQL's notices only
/// from warnings up. At notice level the server reports what an idempotent statement did not
/// need to do ("relation \"_sqlx_migrations\" already exists, skipping"), which on every start
/// reads like a problem to whoever watches the log.
pub const DEFAULT_FILTER: &str = "info,sqlx::postgres::notice=warn";

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) {
    // Unset: the default. Set but not a filter: the default too, and said once logging is up
    // (an operator who asked for debug output should not be left guessing why there is none).
    let (filter, invalid) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(raw) if !raw.trim().is_empty() => match EnvFilter::try_new(&raw) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(DEFAULT_FILTER), Some(error)),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    if let Some(error) = invalid {
        tracing::warn!(%error, "RUST_LOG is not a valid filter: using the default filter {DEFAULT_FILTER}");
    }
}
