//! The property-based harness of strata: a reference model, realistic generators, and a
//! state-machine runner that checks the real store against the model after every step.
//!
//! Use `PROPTEST_CASES=2000 cargo test -p strata-tests` for a deep run; the default keeps CI
//! fast.

pub mod crash;
pub mod fulldisk;

/// Reports a missing shared data set: a skip with a message, except when
/// `STRATA_REQUIRE_SHARED` is set (as `.ci/run` does), where a data set that should be there
/// and is not fails the test instead of passing silently.
///
/// # Panics
/// When `STRATA_REQUIRE_SHARED` is set.
pub fn shared_missing(what: &str) {
    assert!(
        std::env::var_os("STRATA_REQUIRE_SHARED").is_none(),
        "{what} not found, and STRATA_REQUIRE_SHARED is set: the shared data sets must be beside the checkout (../shared)"
    );
    eprintln!("{what} not found; skipping");
}
pub mod fixture;
pub mod harness;
pub mod model;
pub mod nats;
pub mod patch;
pub mod strategy;

/// The proptest case count: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
