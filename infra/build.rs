//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds
//! `../migrations` at compile time, and cargo does not watch that folder by itself (a new
//! migration would otherwise be missing from an incremental build; sqlx's documented remedy).

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
