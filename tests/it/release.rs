//! `make release` and `make install` end to end, the way a user installs a provider.
//!
//! 1. `make release` twice — once in this tree, once from a copy of its sources at another path —
//!    must give byte-identical files (SHA256SUMS, zip, manifest), in the registry layout.
//! 2. The zip in a filesystem mirror (packed layout), a CLI configuration with
//!    `filesystem_mirror` + `direct { exclude }` and no `dev_overrides`: `terraform init` records
//!    the package hashes in `.terraform.lock.hcl`, refuses a zip that does not match a locked
//!    `zh:` hash, and `terraform plan` works against the emulated tenant.
//! 3. `make install` (unpacked layout) and the CLI configuration it writes: the same init + plan.
//!
//! Sources: Terraform CLI configuration "Provider Installation" (packed and unpacked layouts of a
//! filesystem mirror), "Dependency Lock File" (checksum verification, `zh:` and `h1:`),
//! "Publish providers" / the plugin framework's "Publishing to the Registry" (file names,
//! SHA256SUMS, manifest).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::harness::{requires_terraform, FakeTenant, Workspace, PROVIDER_SOURCE};

const NAME: &str = "terraform-provider-breakglass";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const UPN: &str = "bg-release@contoso.onmicrosoft.com";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Terraform's name for this platform (Go's GOOS_GOARCH).
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

fn zip_name() -> String {
    format!("{NAME}_{VERSION}_{}.zip", platform())
}
fn manifest_name() -> String {
    format!("{NAME}_{VERSION}_manifest.json")
}
fn sums_name() -> String {
    format!("{NAME}_{VERSION}_SHA256SUMS")
}
fn binary_name() -> String {
    format!("{NAME}_v{VERSION}")
}

/// The reproducible build's target dir, next to the one this test binary was built in (so it
/// follows CARGO_TARGET_DIR like the Makefile's default does).
fn release_target_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_BIN_EXE_terraform-provider-breakglass"));
    built
        .parent()
        .and_then(Path::parent)
        .expect("target dir of the built provider")
        .join("reproducible")
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Terraform's `h1:` package hash, restated from its definition (golang.org/x/mod's dirhash
/// "Hash1", which Terraform's lock file uses): SHA-256 over the lines
/// "<hex sha256 of file>  <file name>\n" of every file in the package, sorted by name.
fn h1_of_single_file_package(file_name: &str, contents: &[u8]) -> String {
    let summary = format!("{}  {file_name}\n", sha256_hex(contents));
    let digest = Sha256::digest(summary.as_bytes());
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Runs `make <args>` in `dir` with a clean make/cargo environment; panics with the output
/// unless it succeeds.
fn make(dir: &Path, args: &[String], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("make");
    cmd.arg("--no-print-directory")
        .arg("-C")
        .arg(dir)
        .args(args);
    // An outer `make test` hands its jobserver down in MAKEFLAGS; its descriptors are not ours.
    for key in [
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "CARGO_MAKEFLAGS",
        "SOURCE_DATE_EPOCH",
    ] {
        cmd.env_remove(key);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run make (GNU make is a requirement): {e}"));
    eprintln!(
        "make {} in {}: {:.0?}",
        args.join(" "),
        dir.display(),
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "make {} in {} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn git(args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The working tree's sources (tracked files plus untracked, not ignored ones — what a build
/// here compiles) copied to `to`: no target/, .tools/, dist/ or .git.
fn copy_sources(to: &Path) -> usize {
    let listing = git(&[
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]);
    let mut copied = 0;
    for rel in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 path"));
        let from = repo_root().join(rel);
        // Deleted in the working tree but still in the index: the build here does not see it.
        if !from.is_file() {
            continue;
        }
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().expect("parent")).expect("create dir in copy");
        fs::copy(&from, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        copied += 1;
    }
    copied
}

/// The names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One entry of a zip's central directory (APPNOTE.TXT 4.3.12), as far as this test needs it.
#[derive(Debug)]
struct ZipEntry {
    name: String,
    made_by_unix: bool,
    unix_mode: u32,
    dos_time: u16,
    dos_date: u16,
    uncompressed_size: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The central directory, found through the end-of-central-directory record (APPNOTE 4.3.16).
fn zip_entries(zip: &[u8]) -> Vec<ZipEntry> {
    let eocd = (0..=zip.len().saturating_sub(22))
        .rev()
        .find(|&i| zip[i..].starts_with(&[0x50, 0x4b, 0x05, 0x06]))
        .expect("zip has an end-of-central-directory record");
    let count = usize::from(u16_at(zip, eocd + 10));
    let mut at = u32_at(zip, eocd + 16) as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        assert!(
            zip[at..].starts_with(&[0x50, 0x4b, 0x01, 0x02]),
            "central directory header expected at {at}"
        );
        let name_len = usize::from(u16_at(zip, at + 28));
        let extra_len = usize::from(u16_at(zip, at + 30));
        let comment_len = usize::from(u16_at(zip, at + 32));
        entries.push(ZipEntry {
            name: String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned(),
            made_by_unix: zip[at + 5] == 3,
            unix_mode: u32_at(zip, at + 38) >> 16,
            dos_time: u16_at(zip, at + 12),
            dos_date: u16_at(zip, at + 14),
            uncompressed_size: u32_at(zip, at + 24),
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    entries
}

/// MS-DOS date and time (UTC, 2-second steps) of a Unix time, as zip entries carry them.
fn dos_date_time(epoch: i64) -> (u16, u16) {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch).expect("valid epoch");
    let date =
        (((t.year() - 1980) as u16) << 9) | ((u8::from(t.month()) as u16) << 5) | t.day() as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    (date, time)
}

/// Every `zh:`/`h1:` hash recorded for our provider in `.terraform.lock.hcl`.
fn locked_hashes(ws: &Workspace) -> (String, Vec<String>) {
    let lock = fs::read_to_string(ws.dir().join(".terraform.lock.hcl"))
        .expect("terraform init wrote .terraform.lock.hcl");
    let block_start = lock
        .find(&format!("provider \"{PROVIDER_SOURCE}\""))
        .unwrap_or_else(|| panic!("no lock entry for {PROVIDER_SOURCE}:\n{lock}"));
    let block = &lock[block_start..];
    let block = &block[..block.find("\n}").unwrap_or(block.len())];
    let hashes = regex::Regex::new(r#""((?:zh|h1):[^"]+)""#)
        .expect("regex")
        .captures_iter(block)
        .map(|c| c[1].to_owned())
        .collect();
    (lock.clone(), hashes)
}

fn write_lock(ws: &Workspace, hash: &str) {
    // Terraform reads a lock entry like this one when a team commits the official checksums
    // (`terraform providers lock`); here it pins the zip named in SHA256SUMS.
    fs::write(
        ws.dir().join(".terraform.lock.hcl"),
        format!(
            "provider \"{PROVIDER_SOURCE}\" {{\n  version = \"{VERSION}\"\n  hashes = [\n    \"{hash}\",\n  ]\n}}\n"
        ),
    )
    .expect("write lock file");
}

fn forget_installation(ws: &Workspace) {
    let _ = fs::remove_dir_all(ws.dir().join(".terraform"));
    let _ = fs::remove_file(ws.dir().join(".terraform.lock.hcl"));
}

/// A configuration that needs the tenant at plan time: the data source reads Graph, and the
/// account's plan checks the domain of its UPN.
fn config() -> String {
    format!(
        r#"terraform {{
  required_providers {{
    breakglass = {{
      source  = "{PROVIDER_SOURCE}"
      version = "{VERSION}"
    }}
  }}
}}

provider "breakglass" {{}}

data "breakglass_client_config" "current" {{}}

resource "breakglass_account" "release" {{
  user_principal_name = "{UPN}"
  display_name        = "Emergency Access (release test)"
}}

output "tenant_id" {{
  value = data.breakglass_client_config.current.tenant_id
}}
"#
    )
}

/// The provider executable Terraform installed into the working directory.
fn installed_binary(ws: &Workspace) -> PathBuf {
    ws.dir()
        .join(".terraform/providers")
        .join(PROVIDER_SOURCE)
        .join(VERSION)
        .join(platform())
        .join(binary_name())
}

/// `terraform plan` with the installed provider against the tenant: it must read the tenant and
/// plan the account.
fn plan_against(ws: &Workspace, tenant: &FakeTenant, what: &str) {
    let reads_before = organization_reads(tenant);
    let plan = ws.ok(&["plan", "-input=false", "-no-color"]);
    assert!(
        plan.flattened()
            .contains("breakglass_account.release will be created")
            && plan
                .flattened()
                .contains("Plan: 1 to add, 0 to change, 0 to destroy"),
        "{what}: the plan does not create the account\n{plan}"
    );
    assert!(
        plan.text.contains(&tenant.tenant_id),
        "{what}: the plan does not show the tenant id read by breakglass_client_config\n{plan}"
    );
    assert!(
        organization_reads(tenant) > reads_before,
        "{what}: the provider did not read the emulated tenant during plan"
    );
}

fn organization_reads(tenant: &FakeTenant) -> usize {
    tenant
        .state
        .tenant()
        .behaviour
        .request_log
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "/v1.0/organization")
        .count()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o111 == 0o111)
        .unwrap_or(false)
}

#[test]
fn release_is_reproducible_and_installs_from_mirrors() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("breakglass-release-")
        .tempdir()
        .expect("temp dir");
    let target = release_target_dir();
    let first_dist = scratch.path().join("dist-1");
    let second_dist = scratch.path().join("dist-2");
    let copy = scratch.path().join("elsewhere").join("breakglass-src");

    // --- 1. two builds, the second from a copy at another path -------------------------------
    //
    // Both builds use the same release target dir, so the second one recompiles only the
    // workspace crates (their sources moved) and reuses the dependencies compiled by the first.
    // That still proves what reproducibility needs here: the dependencies are compiled from the
    // same registry paths with the same flags either way (the remap flags name the cargo home
    // and this target dir, which both builds share), so a dependency artifact is exactly what a
    // second full build would produce; what differs between two checkouts is the source path,
    // and the provider crate, whose code could embed it, is compiled again from the copy (the
    // assertion on cargo's "Compiling … (<copy>)" line below makes sure). A full build in a
    // second target dir gives the same bytes too, but costs minutes of CI time per run.
    // On a warm target dir the first build may compile nothing: cargo finds the binary up to date
    // with this tree's sources, compiled from the previous run's copy. The comparison is then
    // between that earlier path and this run's fresh one, still two different paths.
    let epoch = String::from_utf8(git(&["log", "-1", "--format=%ct"]))
        .expect("UTF-8")
        .trim()
        .to_owned();
    let target_arg = format!("RELEASE_TARGET_DIR={}", target.display());
    make(
        &repo_root(),
        &[
            "release".into(),
            format!("DIST={}", first_dist.display()),
            target_arg.clone(),
        ],
        &[],
    );
    let copied = copy_sources(&copy);
    assert!(
        copied > 10,
        "only {copied} files copied to {}",
        copy.display()
    );
    // No .git in the copy: SOURCE_DATE_EPOCH says which commit time the first build took from git.
    let second = make(
        &copy,
        &[
            "release".into(),
            format!("DIST={}", second_dist.display()),
            target_arg,
        ],
        &[("SOURCE_DATE_EPOCH", &epoch)],
    );
    let second_log = String::from_utf8_lossy(&second.stderr);
    let recompiled = format!("Compiling {NAME} v{VERSION} ({})", copy.display());
    assert!(
        second_log.contains(&recompiled),
        "the second build did not compile the provider from the copy (no `{recompiled}`):\n{second_log}"
    );

    let expected_files = {
        let mut names = vec![zip_name(), manifest_name(), sums_name()];
        names.sort();
        names
    };
    assert_eq!(listing(&first_dist), expected_files, "files in dist/");
    assert_eq!(listing(&second_dist), expected_files, "files in dist/");
    let sums = read(&first_dist.join(sums_name()));
    assert_eq!(
        String::from_utf8_lossy(&sums),
        String::from_utf8_lossy(&read(&second_dist.join(sums_name()))),
        "SHA256SUMS differ between the build in {} and the one in {}",
        repo_root().display(),
        copy.display()
    );
    for name in &expected_files {
        assert!(
            read(&first_dist.join(name)) == read(&second_dist.join(name)),
            "{name} differs between the two builds"
        );
    }

    // SHA256SUMS: `sha256sum` lines over the zip and the manifest, sorted by name.
    let zip = read(&first_dist.join(zip_name()));
    let manifest = read(&first_dist.join(manifest_name()));
    let mut expected_sums = [
        format!("{}  {}\n", sha256_hex(&zip), zip_name()),
        format!("{}  {}\n", sha256_hex(&manifest), manifest_name()),
    ];
    expected_sums.sort_by(|a, b| a[66..].cmp(&b[66..]));
    assert_eq!(String::from_utf8_lossy(&sums), expected_sums.concat());
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    assert_eq!(
        manifest,
        serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );

    // The zip holds exactly the binary, executable, stamped with the commit time.
    let binary = read(&target.join("release").join(NAME));
    let entries = zip_entries(&zip);
    assert_eq!(entries.len(), 1, "zip entries: {entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.name, binary_name());
    assert!(
        entry.made_by_unix,
        "{entry:?} is not marked as made on Unix"
    );
    assert_eq!(entry.unix_mode, 0o100755, "mode of {entry:?}");
    assert_eq!(entry.uncompressed_size as usize, binary.len());
    let (date, time) = dos_date_time(epoch.parse().expect("commit time"));
    assert_eq!(
        (entry.dos_date, entry.dos_time),
        (date, time),
        "the zip entry is not stamped with the commit time {epoch}"
    );

    // No path of this machine in the binary.
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
        format!(
            "{}/.cargo",
            std::env::var("HOME").expect("HOME or CARGO_HOME")
        )
    });
    for path in [
        repo_root().display().to_string(),
        copy.display().to_string(),
        target.display().to_string(),
        cargo_home,
    ] {
        assert!(
            !binary.windows(path.len()).any(|w| w == path.as_bytes()),
            "the release binary contains the build machine's path {path}"
        );
    }
    eprintln!(
        "reproducible builds checked after {:.0?}",
        started.elapsed()
    );

    // --- 2. the zip from a filesystem mirror (packed layout) ---------------------------------
    let tenant = FakeTenant::start();
    let packed = scratch.path().join("packed-mirror");
    let packed_dir = packed.join(PROVIDER_SOURCE);
    fs::create_dir_all(&packed_dir).expect("mirror dir");
    fs::write(packed_dir.join(zip_name()), &zip).expect("zip into the mirror");
    let ws = Workspace::with_cli_config(
        terraform,
        tenant.provider_env(),
        &mirror_cli_config(&packed),
    );
    ws.write_config(&config());
    let h1 = h1_of_single_file_package(&binary_name(), &binary);
    let zh = format!("zh:{}", sha256_hex(&zip));

    // A plain init records the hash Terraform computes from the package. It adds the `zh:`
    // hashes of a release only when they come signed from a registry (Terraform's
    // internal/providercache/installer.go: "We'll trust new hashes from upstream only if they
    // were verified as signed"), which a filesystem mirror never is.
    ws.ok(&["init", "-input=false", "-no-color"]);
    let (lock, hashes) = locked_hashes(&ws);
    assert!(hashes.contains(&h1), "lock file lacks {h1}:\n{lock}");
    let installed = installed_binary(&ws);
    assert!(
        read(&installed) == binary,
        "the provider Terraform unpacked from the zip is not the built binary"
    );
    assert!(
        is_executable(&installed),
        "{} is not executable",
        installed.display()
    );

    // A lock pinning a different zip: init must refuse the package.
    forget_installation(&ws);
    write_lock(&ws, &format!("zh:{}", sha256_hex(b"another zip")));
    let refused = ws.run(&["init", "-input=false", "-no-color"]);
    assert!(
        !refused.success()
            && refused
                .flattened()
                .contains("doesn't match any of the checksums"),
        "init accepted a zip that does not match the locked zh: hash\n{refused}"
    );

    // A lock pinning the zip by its SHA256SUMS line: init verifies it and adds `h1:`.
    forget_installation(&ws);
    write_lock(&ws, &zh);
    ws.ok(&["init", "-input=false", "-no-color"]);
    let (lock, hashes) = locked_hashes(&ws);
    assert!(
        hashes.contains(&zh) && hashes.contains(&h1),
        "lock file should hold {zh} and {h1}:\n{lock}"
    );
    plan_against(&ws, &tenant, "packed mirror");
    eprintln!("packed mirror checked after {:.0?}", started.elapsed());

    // --- 3. make install (unpacked layout) and the CLI configuration it writes ---------------
    let unpacked = scratch.path().join("unpacked-mirror");
    let cli_config = scratch.path().join("terraformrc");
    make(
        &repo_root(),
        &[
            "install".into(),
            format!("MIRROR={}", unpacked.display()),
            format!("CLI_CONFIG={}", cli_config.display()),
            format!("RELEASE_TARGET_DIR={}", target.display()),
        ],
        &[],
    );
    let in_mirror = unpacked
        .join(PROVIDER_SOURCE)
        .join(VERSION)
        .join(platform())
        .join(binary_name());
    assert!(
        read(&in_mirror) == binary,
        "make install did not install the release binary"
    );
    assert!(
        is_executable(&in_mirror),
        "{} is not executable",
        in_mirror.display()
    );
    let written = fs::read_to_string(&cli_config).expect("make install wrote a CLI config");
    assert!(
        !written.contains("dev_overrides"),
        "make install's CLI config uses dev_overrides:\n{written}"
    );
    let ws = Workspace::with_cli_config(terraform, tenant.provider_env(), &written);
    ws.write_config(&config());
    ws.ok(&["init", "-input=false", "-no-color"]);
    let (lock, hashes) = locked_hashes(&ws);
    // The same h1: as the zip's contents: `make install` installs the release binary.
    assert!(hashes.contains(&h1), "lock file lacks {h1}:\n{lock}");
    plan_against(&ws, &tenant, "make install");
    eprintln!("make install checked after {:.0?}", started.elapsed());

    let violations = tenant.state.tenant().behaviour.spec_violations.clone();
    assert!(
        violations.is_empty(),
        "the emulated tenant answered bodies that do not match specs/: {violations:#?}"
    );
}

/// Our provider only from the packed mirror, everything else as usual; no dev_overrides.
fn mirror_cli_config(mirror: &Path) -> String {
    format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER_SOURCE}\"]\n  }}\n}}\n",
        mirror.display()
    )
}

#[test]
fn dos_date_time_matches_a_known_stamp() {
    // 1795984692 is 2026-11-29 20:38:12 UTC; DOS time counts seconds in 2-second steps.
    let (date, time) = dos_date_time(1_795_984_692);
    assert_eq!(date >> 9, 2026 - 1980);
    assert_eq!((date >> 5) & 0xf, 11);
    assert_eq!(date & 0x1f, 29);
    assert_eq!(
        (time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2),
        (20, 38, 12)
    );
}
