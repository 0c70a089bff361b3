//! Embeds every seed file under `seeds/` into the binary, so `--seed NAME` works from any
//! working directory and the e2e tests need no files next to the executable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let seeds = root.join("seeds");
    println!("cargo:rerun-if-changed={}", seeds.display());
    let mut files = Vec::new();
    collect(&seeds, &mut files);
    files.sort();
    let mut code = String::from("/// Seed files embedded at build time: (path relative to `seeds/`, contents).\npub static EMBEDDED_SEEDS: &[(&str, &str)] = &[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&seeds)
            .expect("under seeds/")
            .to_string_lossy()
            .replace('\\', "/");
        println!("cargo:rerun-if-changed={}", file.display());
        writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("embedded_seeds.rs");
    std::fs::write(out, code).expect("write embedded_seeds.rs");
}
