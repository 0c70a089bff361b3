//! The shipped examples stay true: the quickstart (what `make demo` applies) goes through apply,
//! an empty second plan and destroy against the emulated tenant, and every example validates.

use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{Case, ConnectProxy, FakeTenant, Step};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const QUICKSTART_UPN: &str = "bg-emergency-01@contoso.onmicrosoft.com";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn read_config(dir: &Path) -> String {
    read_config_except(dir, &[])
}

/// The directory's `.tf` files concatenated, leaving out the ones named in `skip`. Calls of the
/// shared module (`../modules/...`) point to the copy `with_modules` puts beside them.
fn read_config_except(dir: &Path, skip: &[&str]) -> String {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .filter(|p| !skip.iter().any(|s| p.file_name().is_some_and(|n| n == *s)))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no .tf file", dir.display());
    files
        .iter()
        .map(|f| fs::read_to_string(f).expect("read example"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\"../modules/", "\"./modules/")
}

/// The quickstart as any Terraform from 1.0 applies it (`make demo` too leaves `posture.tf`,
/// with its `check` block, out on a Terraform older than 1.5).
pub(crate) fn quickstart() -> String {
    read_config_except(&examples_dir().join("quickstart"), &["posture.tf"])
}

/// The whole quickstart, with its `check` block (Terraform 1.5 or later).
pub(crate) fn quickstart_with_posture() -> String {
    read_config(&examples_dir().join("quickstart"))
}

/// The case with `examples/modules` in its working directory, for configurations that call
/// the shared module.
pub(crate) fn with_modules(case: Case) -> Case {
    case.with_dir("modules", &examples_dir().join("modules"))
}

/// The quickstart's account, found by UPN in the tenant's primary replica.
fn quickstart_user_id(tenant: &FakeTenant) -> Option<String> {
    let t = tenant.state.tenant();
    t.directory
        .users
        .list_latest()
        .into_iter()
        .find(|u| {
            u["userPrincipalName"]
                .as_str()
                .is_some_and(|upn| upn.eq_ignore_ascii_case(QUICKSTART_UPN))
        })
        .and_then(|u| u["id"].as_str().map(str::to_owned))
}

fn excluded_everywhere_it_matters(tenant: &FakeTenant, user_id: &str) -> usize {
    let t = tenant.state.tenant();
    t.directory
        .ca_policies
        .list_latest()
        .into_iter()
        .filter(|p| {
            p["conditions"]["users"]["excludeUsers"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id == user_id))
        })
        .count()
}

#[test]
fn quickstart_applies_plans_empty_and_destroys() {
    let config = quickstart();
    with_modules(Case::new())
        .with_tenant(FakeTenant::start())
        // The quickstart protects its account and role by default; the case ends by destroying.
        .env("TF_VAR_deletion_protection", "false")
        .step(Step::Apply(config))
        .step(Step::check(|ctx| {
            let tenant = ctx.tenant();
            let user_id = quickstart_user_id(tenant).ok_or("the quickstart account is missing")?;
            let roles = tenant.state.tenant().pim.directory_roles_of(&user_id);
            if !roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR))
            {
                return Err(format!(
                    "the account holds {roles:?}, not Global Administrator"
                ));
            }
            if excluded_everywhere_it_matters(tenant, &user_id) == 0 {
                return Err("no conditional-access policy excludes the account".into());
            }
            Ok(())
        }))
        .step(Step::destroy_check(|ctx| {
            match quickstart_user_id(ctx.tenant()) {
                Some(id) => Err(format!("the quickstart account {id} is still active")),
                None => Ok(()),
            }
        }))
        .run();
}

/// The quickstart the way it runs against Azure from a corporate network: the tenant serves
/// HTTPS under a public name (`https://login.breakglass.test`) with a certificate from a CA this
/// test generates, the provider trusts that CA only through `SSL_CERT_FILE`, and reaches the
/// name only through an HTTP CONNECT proxy named in `HTTPS_PROXY` — the name resolves nowhere
/// else, and the proxy counts its tunnels, so the apply proves the whole path was used.
#[test]
fn quickstart_applies_over_tls_through_a_connect_proxy() {
    const PUBLIC_HOST: &str = "login.breakglass.test";
    let config = quickstart();
    let tenant = FakeTenant::start_tls(PUBLIC_HOST);
    assert_eq!(tenant.base_url, format!("https://{PUBLIC_HOST}"));
    let proxy = ConnectProxy::start(&format!("{PUBLIC_HOST}:443"), tenant.listen);
    let (log, destroy_log) = (proxy.log.clone(), proxy.log.clone());
    let after_apply = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen_after_apply = after_apply.clone();
    with_modules(Case::new())
        .with_tenant(tenant)
        .env("TF_VAR_deletion_protection", "false")
        .env("HTTPS_PROXY", &proxy.url)
        .env("NO_PROXY", "")
        .step(Step::Apply(config))
        .step(Step::check(move |ctx| {
            let tenant = ctx.tenant();
            if log.connects() == 0 {
                return Err("the provider never opened a tunnel through the proxy".into());
            }
            if !log.refused().is_empty() {
                return Err(format!("the proxy refused requests: {:?}", log.refused()));
            }
            let user_id = quickstart_user_id(tenant).ok_or("the quickstart account is missing")?;
            if !tenant
                .state
                .tenant()
                .pim
                .directory_roles_of(&user_id)
                .iter()
                .any(|r| r.eq_ignore_ascii_case(GLOBAL_ADMINISTRATOR))
            {
                return Err("the account does not hold Global Administrator".into());
            }
            after_apply.store(log.connects(), std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }))
        .step(Step::destroy_check(move |ctx| {
            let before = seen_after_apply.load(std::sync::atomic::Ordering::SeqCst);
            if destroy_log.connects() <= before || !destroy_log.refused().is_empty() {
                return Err(format!(
                    "destroy did not go through the proxy cleanly ({} tunnels, {before} after apply; refused {:?})",
                    destroy_log.connects(),
                    destroy_log.refused()
                ));
            }
            match quickstart_user_id(ctx.tenant()) {
                Some(id) => Err(format!("the quickstart account {id} is still active")),
                None => Ok(()),
            }
        }))
        .run();
    drop(proxy);
}

/// Every example directory with its `.tf` files concatenated and the oldest Terraform it
/// declares (`required_version = ">= X"`, e.g. 1.5 for `check` blocks, 1.11 for write-only
/// attributes; 1.0 otherwise).
fn examples() -> Vec<(PathBuf, String, String)> {
    let mut dirs = vec![
        examples_dir().join("quickstart"),
        examples_dir().join("provider"),
        examples_dir().join("modules").join("breakglass"),
        examples_dir().join("import-existing"),
    ];
    for kind in ["resources", "data-sources"] {
        for entry in fs::read_dir(examples_dir().join(kind)).expect("examples/<kind>") {
            dirs.push(entry.expect("entry").path());
        }
    }
    dirs.sort();
    let declared = regex::Regex::new(r#"required_version\s*=\s*">=\s*([0-9]+)\.([0-9]+)"#).unwrap();
    dirs.into_iter()
        .map(|dir| {
            let config = read_config(&dir);
            // Several files may each declare one; the strictest wins.
            let (major, minor) = declared
                .captures_iter(&config)
                .map(|c| (c[1].parse::<u32>().unwrap(), c[2].parse::<u32>().unwrap()))
                .max()
                .unwrap_or((1, 0));
            (dir, config, format!("{major}.{minor}"))
        })
        .collect()
}

/// Validates the examples whose oldest Terraform satisfies `keep`.
fn validate_all(keep: impl Fn(&str) -> bool) {
    let chosen: Vec<_> = examples()
        .into_iter()
        .filter(|(_, _, min)| keep(min))
        .collect();
    assert!(!chosen.is_empty(), "no example found");
    for (dir, config, min) in chosen {
        eprintln!("validating {} (Terraform >= {min})", dir.display());
        with_modules(Case::new())
            .requires(&min)
            .step(Step::Validate(config))
            .run();
    }
}

/// Every example for any Terraform from 1.0 parses and validates against the provider's schema.
#[test]
fn every_example_validates() {
    validate_all(|min| min == "1.0");
}

/// Examples with `check` blocks (the posture data source), on a Terraform that has them.
#[test]
fn check_block_examples_validate_tf1_5() {
    validate_all(|min| min == "1.5");
}

/// Examples that use write-only attributes, on a Terraform that has them (else a SKIP line).
#[test]
fn write_only_examples_validate_tf1_11() {
    validate_all(|min| min == "1.11");
}

/// `make demo`, the README's first command, as a user runs it: the script applies the
/// quickstart against the emulator binary, has another administrator add a policy, and checks
/// each plan itself (it exits non-zero when the exclusion is not planned or a plan after apply
/// is not empty); here its exit status and its milestones are checked.
#[test]
fn make_demo_applies_the_quickstart_and_catches_a_new_policy() {
    if crate::harness::requires_terraform("1.0").is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .current_dir(root)
        .output()
        .expect("run scripts/demo.sh");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "make demo failed\n{text}");
    for milestone in [
        "demo: after apply: the plan is empty",
        "Plan: 0 to add, 1 to change, 0 to destroy.",
        "demo: applied",
        "demo: after the second apply: the plan is empty",
    ] {
        assert!(text.contains(milestone), "no {milestone:?} in\n{text}");
    }
}
