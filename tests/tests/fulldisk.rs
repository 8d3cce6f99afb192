//! A full disk (issue 10): the store fills a small tmpfs, gets a clean `DiskFull` error, stops
//! (reads and writes of that open store get the same error), reopens with every acknowledged
//! version while the disk is still full, and takes writes again once space is freed; `verify`
//! is clean at the end. The work runs in `strata-crash-child fulldisk` inside a private mount
//! namespace (`strata_tests::fulldisk::private_mount_shell`); the sizes put the failure into different writes (blob files, the log, runs).

use strata_tests::fulldisk::private_mount_shell;

#[test]
fn a_full_disk_is_a_clean_error_and_loses_nothing() {
    let script = r#"mount -t tmpfs -o size="$1" strata-full "$2" && exec "$3" fulldisk "$2" "$4""#;
    if private_mount_shell(script).is_none() {
        return;
    }
    for (size, contents) in [
        ("5m", "large"),
        ("9m", "large"),
        ("5m", "small"),
        ("9m", "small"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = private_mount_shell(script)
            .unwrap()
            .arg(size)
            .arg(dir.path())
            .arg(env!("CARGO_BIN_EXE_strata-crash-child"))
            .arg(contents)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let case = format!("{size} tmpfs, {contents} contents");
        assert!(
            out.status.success(),
            "{case}: {}\n{stdout}\n{stderr}",
            out.status
        );
        let line = |tag: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(tag))
                .unwrap_or_else(|| panic!("{case}: no {tag} line in\n{stdout}"))
                .to_owned()
        };
        let full = line("FULL ");
        let acked: usize = full.split(' ').next().unwrap().parse().unwrap();
        assert!(acked > 10, "{case}: only {acked} versions fit: {full}");
        assert!(
            full.contains("disk holding the store is full"),
            "{case}: {full}"
        );
        assert!(full.contains("free some space"), "{case}: {full}");
        // Reopened on the still-full disk with every acknowledged version, then resumed.
        assert_eq!(line("REOPENED ").parse::<usize>().unwrap(), acked, "{case}");
        assert_eq!(
            line("RESUMED ").parse::<usize>().unwrap(),
            acked + 6,
            "{case}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    }
}
