//! `strata-crash-child puts DIR`, `loop DIR SEED` or `fulldisk DIR small|large`: the processes the crash
//! tests kill (see `strata_tests::crash`) and the full-disk child (`strata_tests::fulldisk`).
//! Not for anything else.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..).unwrap_or_default() {
        [mode, dir] if mode == "puts" => strata_tests::crash::put_child(dir.as_ref()),
        [mode, dir, size] if mode == "fulldisk" => {
            strata_tests::fulldisk::full_disk_child(dir.as_ref(), size == "small")
        }
        [mode, dir, seed] if mode == "loop" => {
            let seed = seed.parse().expect("a numeric seed");
            strata_tests::crash::loop_child(dir.as_ref(), seed)
        }
        _ => {
            eprintln!(
                "usage: strata-crash-child puts DIR | loop DIR SEED | fulldisk DIR small|large"
            );
            std::process::exit(2);
        }
    }
}
