//! Finding the `terraform` binary and its version.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The oldest Terraform the harness runs at all (plugin protocol 6 arrived in 1.0).
const MINIMUM: Version = Version(1, 0, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    /// `1.11.4`, `v1.5`, `1.12.0-alpha20250101` (pre-release suffixes are ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches('v');
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Version(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[derive(Debug, Clone)]
pub struct Terraform {
    pub path: PathBuf,
    pub version: Version,
}

impl Terraform {
    /// The Terraform this test run uses, located once per process.
    pub fn find() -> Result<&'static Terraform, String> {
        static FOUND: OnceLock<Result<Terraform, String>> = OnceLock::new();
        FOUND.get_or_init(locate).as_ref().map_err(Clone::clone)
    }
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// PATH first if it is new enough, then the project-local install.
fn locate() -> Result<Terraform, String> {
    let mut rejected = Vec::new();
    let candidates = [
        on_path("terraform"),
        Some(repo_root().join(".tools/bin/terraform")),
    ];
    for path in candidates.into_iter().flatten() {
        if !path.is_file() {
            continue;
        }
        match version_of(&path) {
            Ok(version) if version >= MINIMUM => return Ok(Terraform { path, version }),
            Ok(version) => rejected.push(format!("{} is {version}", path.display())),
            Err(e) => rejected.push(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "no terraform >= {MINIMUM} found on PATH or in .tools/bin ({}); run `make tools`",
        if rejected.is_empty() {
            "none installed".to_owned()
        } else {
            rejected.join("; ")
        }
    ))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn version_of(path: &Path) -> Result<Version, String> {
    let out = Command::new(path)
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("`version -json` printed no JSON: {e}"))?;
    json["terraform_version"]
        .as_str()
        .and_then(Version::parse)
        .ok_or_else(|| format!("no terraform_version in {json}"))
}

/// The Terraform to run a test with, if there is one at least `min` (`"1.11"`). Otherwise a
/// `SKIP` line naming the test and the reason is printed and `None` returned, so the test
/// returns early. With `BREAKGLASS_E2E_REQUIRED=1`, having no Terraform at all panics instead:
/// a CI run must not turn green by skipping every e2e test.
///
/// A test gated on a version above 1.0 must end its name in `_tf<major>_<minor>` (for example
/// `write_only_password_tf1_11`): `.config/nextest.toml` shows the output of exactly those
/// tests at the end of a run, which is how their SKIP lines become visible under nextest.
pub fn requires_terraform(min: &str) -> Option<&'static Terraform> {
    let wanted = Version::parse(min).unwrap_or_else(|| panic!("bad version {min:?}"));
    let test = std::thread::current()
        .name()
        .unwrap_or("e2e test")
        .to_owned();
    // libtest names each test's thread after the test path; another thread (a runtime worker)
    // has no test name to check.
    if wanted > MINIMUM && test.contains("::") {
        let suffix = format!("_tf{}_{}", wanted.0, wanted.1);
        assert!(
            test.ends_with(&suffix),
            "{test} needs terraform >= {wanted}: name it `…{suffix}` so its SKIP line is shown"
        );
    }
    match Terraform::find() {
        Ok(tf) if tf.version >= wanted => Some(tf),
        Ok(tf) => {
            skip(&format!(
                "SKIP {test}: needs terraform >= {wanted}, found {} at {}",
                tf.version,
                tf.path.display()
            ));
            None
        }
        Err(why) if std::env::var("BREAKGLASS_E2E_REQUIRED").as_deref() == Ok("1") => {
            panic!("{test}: {why}")
        }
        Err(why) => {
            skip(&format!("SKIP {test}: {why}"));
            None
        }
    }
}

/// Writes straight to the process's stderr: `eprintln!` inside a test is captured by libtest
/// and hidden for passing tests, which would make the skip silent under `cargo test`.
fn skip(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("1.11.4"), Some(Version(1, 11, 4)));
        assert_eq!(Version::parse("v1.5"), Some(Version(1, 5, 0)));
        assert_eq!(
            Version::parse("1.12.0-alpha20250101"),
            Some(Version(1, 12, 0))
        );
        assert_eq!(Version::parse("one"), None);
        assert!(Version(1, 0, 3) < Version(1, 11, 0));
        assert!(Version(1, 11, 0) <= Version(1, 11, 4));
    }
}
