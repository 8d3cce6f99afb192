//! Keeps the single-binary layout honest: every file in `tests/` must be a module of the runner.

#[test]
fn test_no_forgotten_test_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let runner = std::fs::read_to_string(dir.join("runner.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".rs")
            && stem != "runner"
        {
            assert!(
                runner.contains(&format!("mod {stem};")),
                "tests/{name} is not listed in runner.rs"
            );
        }
    }
}
