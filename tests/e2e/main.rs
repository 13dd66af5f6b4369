//! End-to-end tests: the real server on a random port against a real PostgreSQL, one module per
//! feature.
#![allow(clippy::unwrap_used, missing_docs)]

mod audit_api;
mod dashboards;
mod logs;
mod pipeline;
mod privacy;
mod service;
mod subscriptions;
