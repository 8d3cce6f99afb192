//! The CLI suite of `cli.rs` run again with every command that a server can run sent to a
//! `strata serve` for its store (`strata --remote URL ...`): the same assertions on output
//! and exit codes hold in both modes. Which commands go through a server, and which stay
//! local, is in `common::remote_suite`.

#[path = "cli.rs"]
mod suite;
