//! The state-machine property: random operation sequences, checked against the model after
//! every step, under every policy. `PROPTEST_CASES=1000` for a deep run.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use strata_storage::Durability;
use strata_tests::fixture::{EngineUnderTest, policies};
use strata_tests::harness::run_ops;
use strata_tests::strategy::ops;

fn run_policy(index: usize, durability: Durability) {
    run_on(EngineUnderTest::Sled, index, durability, 32);
}

fn run_on(engine: EngineUnderTest, index: usize, durability: Durability, cases: u32) {
    let policy = &policies()[index];
    // A failure's seed is saved in `prop_store.proptest-regressions` beside this file (add a
    // one-line postmortem after its `#` when fixing it), and every run replays the saved
    // seeds first.
    let mut runner = TestRunner::new(Config {
        cases: strata_tests::cases(cases),
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..Config::default()
    });
    let result = runner.run(&ops(40), |ops| {
        run_ops(&ops, policy, durability, engine).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{engine:?} engine, policy {policy:?}: {e}");
    }
}

/// The same operations and model against the memory engine, every policy: the engine seam
/// must not change what a store does.
#[test]
fn prop_memory_engine_matches_model_under_every_policy() {
    for index in 0..policies().len() {
        run_on(EngineUnderTest::Memory, index, Durability::EveryPut, 16);
    }
}

/// The same operations and model against the NATS engine on a real `nats-server` (skipped
/// when none is installed, except under `STRATA_REQUIRE_NATS`), every policy;
/// `STRATA_NATS_CASES` cases each (default 8).
#[test]
fn prop_nats_engine_matches_model_under_every_policy() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let Some(server) = strata_tests::nats::NatsServer::start(dir.path()) else {
        return;
    };
    let url: &'static str = Box::leak(server.url().into_boxed_str());
    let cases = std::env::var("STRATA_NATS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    for index in 0..policies().len() {
        run_on(
            EngineUnderTest::Nats(url),
            index,
            Durability::EveryPut,
            cases,
        );
    }
}

#[test]
fn prop_store_matches_model_full() {
    run_policy(0, Durability::EveryPut);
}

#[test]
fn prop_store_matches_model_chain_2() {
    run_policy(1, Durability::Manual);
}

#[test]
fn prop_store_matches_model_chain_50() {
    run_policy(2, Durability::EveryPut);
}

#[test]
fn prop_store_matches_model_every_3() {
    run_policy(3, Durability::Manual);
}

#[test]
fn prop_store_matches_model_cost_1() {
    run_policy(4, Durability::Manual);
}

#[test]
fn prop_store_matches_model_cost_4() {
    run_policy(5, Durability::EveryPut);
}

#[test]
fn prop_store_matches_model_skip() {
    run_policy(6, Durability::Manual);
}

#[test]
fn prop_store_matches_model_sparse_4() {
    run_policy(7, Durability::Manual);
}

#[test]
fn prop_store_matches_model_reverse_1() {
    run_policy(8, Durability::Manual);
}

#[test]
fn prop_store_matches_model_reverse_4() {
    run_policy(9, Durability::EveryPut);
}

#[test]
fn prop_store_matches_model_custom_policy() {
    run_policy(10, Durability::Manual);
}

#[test]
fn every_policy_has_a_test() {
    assert_eq!(
        policies().len(),
        11,
        "add a prop_store_matches_model_* test for the new policy"
    );
}
