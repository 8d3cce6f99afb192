//! The property-based harness of strata: a reference model, realistic generators, and a
//! state-machine runner that checks the real store against the model after every step.
//!
//! Use `PROPTEST_CASES=2000 cargo test -p strata-tests` for a deep run; the default keeps CI
//! fast.

pub mod fixture;
pub mod harness;
pub mod model;
pub mod patch;
pub mod strategy;

/// The proptest case count: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
