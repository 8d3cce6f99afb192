//! The event-store suite of `events.rs` run again with every command that a server can run
//! sent to a `strata serve` for its store (`strata --remote URL ...`); see
//! `common::remote_suite`.

#[path = "events.rs"]
mod suite;
