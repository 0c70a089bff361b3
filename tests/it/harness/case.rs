//! Test cases as step lists.

use regex::Regex;
use serde_json::Value as Json;

use super::tenant::FakeTenant;
use super::terraform::requires_terraform;
use super::workspace::{State, Workspace};

/// Which command an expected error must come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `terraform validate`: schema and provider/resource validation.
    Validate,
    /// `terraform plan`: also configure, read and plan.
    Plan,
    /// `terraform apply`: everything.
    Apply,
}

/// A check over state and tenant; `Err` fails the step with that message.
pub type Check = Box<dyn Fn(&Ctx<'_>) -> Result<(), String>>;

pub enum Step {
    /// `terraform validate` of this config must succeed.
    Validate(String),
    /// Apply this config; afterwards a plan of the same config must be empty.
    Apply(String),
    /// A plan of the current config must propose no changes.
    PlanEmpty,
    /// Arbitrary checks on state and tenant after the previous step.
    Check(Check),
    /// Import `id` (default: the `id` attribute in state, as azuread's ImportStateVerify does)
    /// into `address` in a fresh working directory with the current config; the imported
    /// attributes must equal those in state, except `ignore`.
    ImportVerify {
        address: String,
        id: Option<String>,
        ignore: Vec<String>,
    },
    /// This config must fail at `stage` with output matching `pattern`. The config applied
    /// before stays in force for the following steps.
    ExpectError {
        config: String,
        stage: Stage,
        pattern: Regex,
    },
    /// `terraform destroy`; state must be empty afterwards, then the check runs (typically:
    /// the objects are gone from the tenant).
    DestroyCheck(Check),
}

impl Step {
    pub fn check(f: impl Fn(&Ctx<'_>) -> Result<(), String> + 'static) -> Step {
        Step::Check(Box::new(f))
    }
    pub fn destroy_check(f: impl Fn(&Ctx<'_>) -> Result<(), String> + 'static) -> Step {
        Step::DestroyCheck(Box::new(f))
    }
    pub fn expect_error(config: impl Into<String>, stage: Stage, pattern: &str) -> Step {
        Step::ExpectError {
            config: config.into(),
            stage,
            pattern: Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern:?}: {e}")),
        }
    }
    /// Import by an explicit id (for resources whose import id is not their `id`).
    pub fn import_verify(address: &str, id: impl Into<String>, ignore: &[&str]) -> Step {
        Step::ImportVerify {
            address: address.to_owned(),
            id: Some(id.into()),
            ignore: ignore.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
    /// Import by the `id` the resource has in state.
    pub fn import_state_verify(address: &str, ignore: &[&str]) -> Step {
        Step::ImportVerify {
            address: address.to_owned(),
            id: None,
            ignore: ignore.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Step::Validate(_) => "Validate",
            Step::Apply(_) => "Apply",
            Step::PlanEmpty => "PlanEmpty",
            Step::Check(_) => "Check",
            Step::ImportVerify { .. } => "ImportVerify",
            Step::ExpectError { .. } => "ExpectError",
            Step::DestroyCheck(_) => "DestroyCheck",
        }
    }
}

/// What a check can look at.
pub struct Ctx<'a> {
    pub state: State,
    pub tenant: Option<&'a FakeTenant>,
    pub workspace: &'a Workspace,
}

impl Ctx<'_> {
    pub fn tenant(&self) -> &FakeTenant {
        self.tenant
            .expect("this check needs a case started with .with_tenant()")
    }
}

pub struct Case {
    min_terraform: String,
    tenant: Option<FakeTenant>,
    env: Vec<(String, String)>,
    steps: Vec<Step>,
    /// Directories copied into the working directory first: (destination, source).
    dirs: Vec<(String, std::path::PathBuf)>,
}

impl Default for Case {
    fn default() -> Self {
        Case::new()
    }
}

impl Case {
    pub fn new() -> Case {
        Case {
            min_terraform: "1.0".to_owned(),
            tenant: None,
            env: Vec::new(),
            steps: Vec::new(),
            dirs: Vec::new(),
        }
    }

    /// Copies the directory `source` into the working directory as `dest` (e.g. a local module
    /// the configuration calls with `source = "./modules/x"`).
    pub fn with_dir(mut self, dest: &str, source: &std::path::Path) -> Case {
        self.dirs.push((dest.to_owned(), source.to_path_buf()));
        self
    }

    /// Serve this tenant and configure the provider for it through the environment.
    pub fn with_tenant(mut self, tenant: FakeTenant) -> Case {
        self.env.extend(tenant.provider_env());
        self.tenant = Some(tenant);
        self
    }

    /// An extra environment variable for every terraform command (overrides the tenant's).
    pub fn env(mut self, key: &str, value: &str) -> Case {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The oldest Terraform this case can run on (`"1.5"` for import blocks, `"1.11"` for
    /// write-only attributes).
    pub fn requires(mut self, min_terraform: &str) -> Case {
        self.min_terraform = min_terraform.to_owned();
        self
    }

    pub fn step(mut self, step: Step) -> Case {
        self.steps.push(step);
        self
    }

    /// Runs every step, then destroys whatever is left in state. Panics (failing the test)
    /// at the first step that does not behave, with Terraform's full output.
    pub fn run(self) {
        let Some(terraform) = requires_terraform(&self.min_terraform) else {
            return;
        };
        let ws = Workspace::new(terraform, self.env.clone());
        for (dest, source) in &self.dirs {
            copy_dir(source, &ws.dir().join(dest));
        }
        let tenant = self.tenant.as_ref();
        // The config in force: the last one applied (an ExpectError config does not stick).
        let mut current = String::new();
        ws.write_config(&current);

        for (index, step) in self.steps.iter().enumerate() {
            let at = format!("step {} ({})", index + 1, step.name());
            match step {
                Step::Validate(config) => {
                    ws.write_config(config);
                    expect_success(&ws, &at, &["validate", "-no-color"]);
                    ws.write_config(&current);
                }
                Step::Apply(config) => {
                    current = config.clone();
                    ws.write_config(&current);
                    expect_success(
                        &ws,
                        &at,
                        &["apply", "-auto-approve", "-input=false", "-no-color"],
                    );
                    plan_is_empty(&ws, &format!("{at}, plan after apply"));
                }
                Step::PlanEmpty => plan_is_empty(&ws, &at),
                Step::Check(check) => {
                    let ctx = Ctx {
                        state: ws.state(),
                        tenant,
                        workspace: &ws,
                    };
                    if let Err(why) = check(&ctx) {
                        panic!("{at}: check failed: {why}\nstate: {:#}", ctx.state.0);
                    }
                }
                Step::ImportVerify {
                    address,
                    id,
                    ignore,
                } => import_verify(
                    &ws,
                    terraform,
                    &self.env,
                    &current,
                    &at,
                    address,
                    id.as_deref(),
                    ignore,
                ),
                Step::ExpectError {
                    config,
                    stage,
                    pattern,
                } => {
                    ws.write_config(config);
                    let args: &[&str] = match stage {
                        Stage::Validate => &["validate", "-no-color"],
                        Stage::Plan => &["plan", "-input=false", "-no-color"],
                        Stage::Apply => &["apply", "-auto-approve", "-input=false", "-no-color"],
                    };
                    let out = ws.run(args);
                    ws.write_config(&current);
                    assert!(
                        !out.success(),
                        "{at}: expected `{}` to fail matching /{pattern}/, but it succeeded\n{out}",
                        out.command
                    );
                    assert!(
                        out.matches(pattern),
                        "{at}: `{}` failed, but its output does not match /{pattern}/\n{out}",
                        out.command
                    );
                }
                Step::DestroyCheck(check) => {
                    expect_success(
                        &ws,
                        &at,
                        &["destroy", "-auto-approve", "-input=false", "-no-color"],
                    );
                    let ctx = Ctx {
                        state: ws.state(),
                        tenant,
                        workspace: &ws,
                    };
                    let left: Vec<String> =
                        ctx.state.resources().into_iter().map(|(a, _)| a).collect();
                    assert!(
                        left.is_empty(),
                        "{at}: state still holds {left:?} after destroy"
                    );
                    if let Err(why) = check(&ctx) {
                        panic!("{at}: destroy check failed: {why}");
                    }
                }
            }
        }

        // Leave nothing behind in the tenant, like the SDK's test framework does.
        if !ws.state().is_empty() {
            expect_success(
                &ws,
                "final destroy",
                &["destroy", "-auto-approve", "-input=false", "-no-color"],
            );
        }

        // Every body the emulated tenant answered during the case matched the vendored API
        // descriptions (it checks each response and records mismatches); requests that did not
        // would already have been refused with a 400 and failed a step.
        if let Some(tenant) = tenant {
            let violations = tenant.state.tenant().behaviour.spec_violations.clone();
            assert!(
                violations.is_empty(),
                "the emulated tenant answered bodies that do not match specs/: {violations:#?}"
            );
        }
    }
}

fn expect_success(ws: &Workspace, at: &str, args: &[&str]) {
    let out = ws.run(args);
    assert!(out.success(), "{at}: `{}` failed\n{out}", out.command);
}

/// `plan -detailed-exitcode`: 0 = no changes, 2 = changes, 1 = error. A `check` block's data
/// source is planned as a read on every plan (Terraform re-reads it at apply to verify the
/// check), which makes the exit code 2 with nothing to change: such a plan counts as empty when
/// the saved plan shows no change other than those reads.
fn plan_is_empty(ws: &Workspace, at: &str) {
    let out = ws.run(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-out=empty-check.tfplan",
    ]);
    match out.exit_code {
        Some(0) => {}
        Some(2) => {
            let shown = ws.run(&["show", "-json", "empty-check.tfplan"]);
            assert!(shown.success(), "{at}: `{}` failed\n{shown}", shown.command);
            // The JSON is stdout's one line; warnings (the dev override) come after it.
            let json = shown
                .text
                .lines()
                .find(|l| l.starts_with('{'))
                .unwrap_or("");
            let plan: serde_json::Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("{at}: plan JSON: {e}\n{shown}"));
            let changes: Vec<String> = plan["resource_changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| {
                    let actions = &c["change"]["actions"];
                    let check_read = actions == &serde_json::json!(["read"])
                        && c["action_reason"] == "read_because_check_nested";
                    actions != &serde_json::json!(["no-op"]) && !check_read
                })
                .map(|c| format!("{} {}", c["address"], c["change"]["actions"]))
                .collect();
            assert!(
                changes.is_empty()
                    && plan["output_changes"].as_object().is_none_or(|o| o
                        .values()
                        .all(|c| c["actions"] == serde_json::json!(["no-op"]))),
                "{at}: expected an empty plan, but Terraform plans changes {changes:?}\n{out}"
            );
        }
        _ => panic!("{at}: `{}` failed\n{out}", out.command),
    }
}

/// Copies a directory tree (a local module into a workspace).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn import_verify(
    ws: &Workspace,
    terraform: &'static super::Terraform,
    env: &[(String, String)],
    config: &str,
    at: &str,
    address: &str,
    id: Option<&str>,
    ignore: &[String],
) {
    let expected = ws
        .state()
        .resource(address)
        .unwrap_or_else(|| panic!("{at}: {address} is not in state, nothing to compare with"));
    let id = match id {
        Some(id) => id.to_owned(),
        None => expected["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: {address} has no string `id` to import by"))
            .to_owned(),
    };
    let fresh = Workspace::new(terraform, env.to_vec());
    // Local modules the configuration calls come along (every directory but Terraform's own).
    for entry in std::fs::read_dir(ws.dir()).expect("read workspace") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if path.is_dir() && !name.starts_with('.') {
            copy_dir(&path, &fresh.dir().join(&name));
        }
    }
    fresh.write_config(config);
    let out = fresh.run(&["import", "-input=false", "-no-color", address, &id]);
    assert!(out.success(), "{at}: `{}` failed\n{out}", out.command);
    let imported = fresh
        .state()
        .resource(address)
        .unwrap_or_else(|| panic!("{at}: import succeeded but {address} is not in state\n{out}"));
    // `deletion_protection` is the provider's own setting, which import sets to its default
    // (on): a case that turned it off to be able to destroy differs there by design.
    if imported.get("deletion_protection").is_some() {
        assert_eq!(
            imported["deletion_protection"],
            Json::Bool(true),
            "{at}: an import must protect the object it brings in"
        );
    }
    let mut ignore = ignore.to_vec();
    ignore.push("deletion_protection".to_owned());
    let differences = differing_attributes(&expected, &imported, &ignore);
    assert!(
        differences.is_empty(),
        "{at}: importing {id} into {address} does not reproduce state:\n{}",
        differences.join("\n")
    );
}

/// Top-level attributes whose values differ, as `name: state=… imported=…` lines.
pub fn differing_attributes(expected: &Json, imported: &Json, ignore: &[String]) -> Vec<String> {
    let empty = serde_json::Map::new();
    let e = expected.as_object().unwrap_or(&empty);
    let i = imported.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = e.keys().chain(i.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| !ignore.contains(n))
        .filter_map(|n| {
            let (a, b) = (
                e.get(n).unwrap_or(&Json::Null),
                i.get(n).unwrap_or(&Json::Null),
            );
            (a != b).then(|| format!("  {n}: state={a} imported={b}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn import_comparison_reports_each_differing_attribute_except_ignored_ones() {
        let state = json!({"id": "1", "display_name": "BG 1", "password": "x", "tags": ["a"]});
        let imported =
            json!({"id": "1", "display_name": "BG one", "password": null, "tags": ["a"]});
        let diff = differing_attributes(&state, &imported, &["password".to_owned()]);
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].contains("display_name"), "{diff:?}");
        assert!(differing_attributes(&state, &state, &[]).is_empty());
    }
}
