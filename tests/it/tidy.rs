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
    // Development tools under src/bin (`make docs`) are other programs; Terraform never runs them.
    hits.retain(|h| !h.starts_with("src/main.rs") && !h.starts_with("src/bin/"));
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

/// The layers of ARCHITECTURE.md and which `crate::` modules each may name, outside tests.
/// Direction of dependencies: provider → resources/data_sources → azure, framework; protocol →
/// framework; azure → logging only; framework and logging → nothing.
const LAYERS: &[(&str, &[&str])] = &[
    ("src/framework/", &["framework"]),
    ("src/logging.rs", &[]),
    ("src/azure/", &["azure", "logging"]),
    ("src/protocol/", &["protocol", "framework", "logging"]),
    (
        "src/resources/",
        &["resources", "framework", "azure", "logging"],
    ),
    (
        "src/data_sources/",
        &["data_sources", "resources", "framework", "azure", "logging"],
    ),
    ("src/docs.rs", &["docs", "provider", "framework"]),
    (
        "src/provider/",
        &[
            "provider",
            "resources",
            "data_sources",
            "framework",
            "azure",
            "logging",
        ],
    ),
];

/// `crate::<module>` names used in the non-test code of `text`.
fn crate_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let module: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                found.push((n + 1, module));
            }
            rest = after;
        }
        // `use crate::{a, b}` names several at once.
        if let Some(group) = code.split("crate::{").nth(1) {
            for part in group.split(['}', ',']) {
                let module: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() {
                    found.push((n + 1, module));
                }
            }
        }
    }
    found
}

/// Layer violations in the source tree rooted at `root` (a function so the rule itself can be
/// tested on a made-up tree).
fn layering_violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut violations = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let Some((layer, allowed)) = LAYERS.iter().find(|(dir, _)| rel.starts_with(dir)) else {
            continue;
        };
        // `#[cfg(test)] mod tests;` files are test code through and through.
        if rel.ends_with("/tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (line, module) in crate_modules(&text) {
            if !allowed.contains(&module.as_str()) {
                violations.push(format!(
                    "{rel}:{line}: {layer} may not name crate::{module} (allowed: {allowed:?})"
                ));
            }
        }
    }
    violations
}

#[test]
fn modules_import_only_in_the_documented_direction() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let violations = layering_violations(root);
    assert!(
        violations.is_empty(),
        "imports against the layering of ARCHITECTURE.md:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layering_rule_catches_the_azure_layer_naming_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let azure = dir.path().join("src/azure");
    fs::create_dir_all(&azure).unwrap();
    fs::write(
        azure.join("mod.rs"),
        "use crate::provider::ProviderConfig;\nuse crate::{framework::Value, logging};\n\
         #[cfg(test)]\nmod tests { use crate::resources::x; }\n",
    )
    .unwrap();
    let violations = layering_violations(dir.path());
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].contains("crate::provider"));
    assert!(violations[1].contains("crate::framework"));
}

/// Every dependency in Cargo.toml is used by the code (what `cargo machete` checks), so an
/// unused one cannot linger. Crates used only by generated code are named with the reason.
#[test]
fn every_declared_dependency_is_used() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    // Used by the code build.rs generates from proto/ (not under src/).
    let generated_only = ["tonic-prost", "prost"];
    let mut sources = String::new();
    let mut files = Vec::new();
    for dir in ["src", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.push(root.join("build.rs"));
    for file in files {
        sources.push_str(&fs::read_to_string(file).unwrap());
    }
    let mut unused = Vec::new();
    let mut section = "";
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if !matches!(
            section,
            "[dependencies]" | "[dev-dependencies]" | "[build-dependencies]"
        ) {
            continue;
        }
        let Some(name) = line.split(['=', '.']).next().map(str::trim) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') || generated_only.contains(&name) {
            continue;
        }
        let ident = name.replace('-', "_");
        let ident = if ident == "breakglass_fake_tenant" {
            "fake_tenant".to_owned()
        } else {
            ident
        };
        if !sources.contains(&format!("{ident}::")) && !sources.contains(&format!("use {ident}")) {
            unused.push(format!("{section} {name}"));
        }
    }
    assert!(
        unused.is_empty(),
        "declared but never used:\n{}",
        unused.join("\n")
    );
}
