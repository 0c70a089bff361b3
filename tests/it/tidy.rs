//! Repository-wide rules that keep the layering in ARCHITECTURE.md true, checked on every
//! `make test` (rust-analyzer's "tidy" idea). A failure names the file and line to fix.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source lines (comments excluded) of every file under `src/` that mention `needle` while
/// living outside `allowed_dir`.
fn code_mentions_outside(needle: &str, allowed_dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut hits = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with(allowed_dir) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(needle) {
                hits.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn only_the_protocol_layer_knows_grpc_types() {
    let mut hits = code_mentions_outside("tonic", "src/protocol/");
    hits.extend(code_mentions_outside("prost", "src/protocol/"));
    assert!(
        hits.is_empty(),
        "tonic/prost outside src/protocol/:\n{}",
        hits.join("\n")
    );
}

#[test]
fn only_the_azure_layer_knows_http() {
    let hits = code_mentions_outside("reqwest", "src/azure/");
    assert!(
        hits.is_empty(),
        "reqwest outside src/azure/:\n{}",
        hits.join("\n")
    );
}

/// Stdout carries the go-plugin handshake line and nothing else: a stray print there breaks
/// Terraform's parsing of the handshake. Only `src/main.rs` (usage text when run by hand) and
/// the handshake writer may print.
#[test]
fn nothing_else_writes_to_stdout() {
    let mut hits = code_mentions_outside("println!", "src/main.rs");
    hits.extend(code_mentions_outside("print!(", "src/main.rs"));
    hits.extend(code_mentions_outside("stdout()", "src/protocol/serve.rs"));
    hits.retain(|h| !h.starts_with("src/main.rs"));
    assert!(
        hits.is_empty(),
        "writes to stdout outside the handshake:\n{}",
        hits.join("\n")
    );
}

/// The emulated tenant is a stand-in for Azure: the provider must reach it only over HTTP.
#[test]
fn the_provider_does_not_link_the_emulated_tenant() {
    let hits = code_mentions_outside("fake_tenant", "src/none/");
    assert!(
        hits.is_empty(),
        "provider code names the emulator:\n{}",
        hits.join("\n")
    );
}
