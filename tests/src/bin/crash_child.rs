//! `strata-crash-child puts DIR` or `strata-crash-child loop DIR SEED`: the processes the
//! crash tests kill (see `strata_tests::crash`). Not for anything else.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..).unwrap_or_default() {
        [mode, dir] if mode == "puts" => strata_tests::crash::put_child(dir.as_ref()),
        [mode, dir, seed] if mode == "loop" => {
            let seed = seed.parse().expect("a numeric seed");
            strata_tests::crash::loop_child(dir.as_ref(), seed)
        }
        _ => {
            eprintln!("usage: strata-crash-child puts DIR | loop DIR SEED");
            std::process::exit(2);
        }
    }
}
