//! Microsoft's own Python SDKs against the emulated tenant over TLS (`tests/sdk/`).
//!
//! The emulator has otherwise only been driven by this provider's client, which shares its
//! authors' reading of the documents. Here MSAL, azure-identity, msgraph-sdk (Kiota) and the
//! azure-mgmt-* packages — pinned in `tests/sdk/requirements.txt`, installed into
//! `.tools/python-sdk` by `scripts/ensure-python-sdks.sh` (`make tools`) — run every operation
//! the provider relies on. Without the installation the test prints a visible `SKIP` line, or
//! fails under `BREAKGLASS_E2E_REQUIRED=1` (set by `make test`), as the Terraform tests do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::FakeTenant;

/// A guard against a hung interpreter, not a performance assertion.
const DEADLINE: Duration = Duration::from_secs(300);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter and package directory `ensure-python-sdks.sh` recorded, if its stamp still
/// matches `tests/sdk/requirements.txt`.
fn installed_sdks() -> Result<(PathBuf, PathBuf), String> {
    let dir = repo().join(".tools/python-sdk");
    let stamp = std::fs::read_to_string(dir.join("installed"))
        .map_err(|_| "the SDKs are not installed in .tools/python-sdk".to_owned())?;
    let requirements = std::fs::read(repo().join("tests/sdk/requirements.txt"))
        .map_err(|e| format!("tests/sdk/requirements.txt: {e}"))?;
    let hash: String = Sha256::digest(&requirements)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let field = |name: &str| {
        stamp
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    if field("requirements").as_deref() != Some(hash.as_str()) {
        return Err("the installed SDKs are not the ones tests/sdk/requirements.txt pins".into());
    }
    let python = field("python").ok_or("the install stamp names no interpreter")?;
    Ok((PathBuf::from(python), dir.join("site")))
}

#[test]
fn official_python_sdks_run_the_providers_operations_against_the_emulated_tenant_over_tls() {
    let (python, site) = match installed_sdks() {
        Ok(found) => found,
        Err(why) if std::env::var("BREAKGLASS_E2E_REQUIRED").as_deref() == Ok("1") => {
            panic!("{why}; run `make tools` (scripts/ensure-python-sdks.sh)")
        }
        Err(why) => {
            eprintln!("SKIP official_python_sdks…: {why}; run `make tools`");
            return;
        }
    };
    let tenant = FakeTenant::start_tls_direct("localhost");
    let ca_file = tenant.ca_file.clone().expect("a TLS tenant has a CA file");
    let subscription = tenant
        .state
        .tenant()
        .arm
        .subscriptions
        .values()
        .next()
        .map(|s| s.id.clone())
        .expect("a seeded subscription");
    let work = tempfile::Builder::new()
        .prefix("breakglass-sdk-")
        .tempdir()
        .expect("temp dir");

    let mut command = Command::new(&python);
    command
        .arg(repo().join("tests/sdk/official_sdks.py"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "*")
        .env("BG_URL", &tenant.base_url)
        .env("BG_TENANT_ID", &tenant.tenant_id)
        .env("BG_CLIENT_ID", &tenant.client_id)
        .env("BG_CLIENT_SECRET", &tenant.client_secret)
        .env("BG_SUBSCRIPTION_ID", &subscription)
        .env("BG_CA_FILE", &ca_file)
        .env("BG_WORK_DIR", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let started = Instant::now();
    while child.try_wait().expect("wait for python").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("sdk: all "),
        "the official SDKs failed against the emulated tenant ({:?}):\n{stdout}\n{stderr}",
        out.status
    );

    // The emulator saw each SDK, and answered every body as the vendored specs describe.
    let t = tenant.state.tenant();
    let log = &t.behaviour.request_log;
    let user_agents: Vec<String> = log
        .iter()
        .filter_map(|r| {
            r["requestHeaders"]["user-agent"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for sdk in [
        "azsdk-python-identity",
        "kiota-python",
        "azsdk-python-mgmt-resource",
        "azsdk-python-mgmt-loganalytics",
        "azsdk-python-mgmt-monitor",
    ] {
        assert!(
            user_agents.iter().any(|ua| ua.contains(sdk)),
            "no request from {sdk}; user agents seen: {user_agents:?}"
        );
    }
    for discovery in [
        "/v2.0/.well-known/openid-configuration",
        "/common/discovery/instance",
    ] {
        assert!(
            log.iter()
                .any(|r| r["path"].as_str().is_some_and(|p| p.ends_with(discovery))),
            "MSAL never fetched {discovery}"
        );
    }
    assert!(
        t.behaviour.spec_violations.is_empty(),
        "answers that do not match specs/: {:#?}",
        t.behaviour.spec_violations
    );
    eprintln!("{stdout}");
}
