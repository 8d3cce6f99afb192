//! One test binary for every integration and property suite (faster to build and link).

mod compat;
mod conformance;
mod contention;
mod corpus;
mod crash;
mod damage;
mod feed;
mod fulldisk;
mod guard;
mod packs;
mod prop_diff;
mod prop_store;
mod put_each;
mod regressions;
mod reopen;
mod retention;
