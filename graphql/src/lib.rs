//! The service's edge: staff authentication, the HTTP server and (in `main.rs`) the `clinic`
//! binary.
//!
//! Principal pieces:
//! - [`auth`]: HS256 staff tokens ([`auth::Claims`], [`auth::Role`]) signed and checked with
//!   `CLINIC_JWT_SECRET`;
//! - [`server`]: builds the axum [`axum::Router`] ([`server::app`]) so tests run the real thing on
//!   port 0, and serves it with graceful shutdown;
//! - [`operator`]: the privacy commands of the binary (erase, rotate the master key, export
//!   the accounting of disclosures);
//! - [`telemetry`]: tracing set-up (human on a terminal, JSON otherwise).

pub mod auth;
pub mod error;
pub mod http_api;
pub mod operator;
pub mod schema;
pub mod server;
pub mod telemetry;
