//! Reliability under faults (issue 12): the quickstart applied through every fault the
//! emulated tenant can inject at every step (`fault_matrix`), with the provider or Terraform
//! killed after every request (`killed_applies`), and two pipelines excluding their accounts
//! from the same policies at once (`two_pipelines`). Every run ends with the same proof:
//! Terraform's state equals the tenant, with no duplicate and no orphaned object
//! (`harness::convergence`).
//!
//! `make test` runs a representative part of each family within the CI budget;
//! `make soak` (`BREAKGLASS_SOAK=1`) runs all of it, repeatedly. Each family writes its
//! figures to `target/reliability/<family>.md` (what RELIABILITY.md reports).

mod fault_matrix;
mod killed_applies;
mod two_pipelines;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::harness::convergence;
use crate::harness::{FakeTenant, State, Terraform, Workspace};

/// Whether this is a soak run (`make soak`): every cell, every N, more rounds.
fn soak() -> bool {
    std::env::var("BREAKGLASS_SOAK").as_deref() == Ok("1")
}

/// The quickstart as shipped (every `.tf` file of examples/quickstart but the check block, which
/// a Terraform older than 1.5 cannot read), so resources added to it join every family here
/// without a change. Its module is copied next to it by `Stack::new`.
fn quickstart() -> String {
    crate::examples::quickstart()
}

const APPLY: &[&str] = &["apply", "-auto-approve", "-input=false", "-no-color"];
const PLAN: &[&str] = &["plan", "-detailed-exitcode", "-input=false", "-no-color"];

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The apply under the fault converged by itself.
    Converged,
    /// It failed with a clear diagnostic (the summary given), and the next apply converged.
    Recovered(String),
    /// The next apply refused with a clear diagnostic naming the `terraform import` that adopts
    /// an object the killed run made (the summary given); after that import, an apply converged.
    Imported(String),
    /// The next apply converged, and the only objects no state claims are exclusion entries
    /// of the stack's own principals that the killed run had added (this many): the tenant
    /// holds them, `policy_ids` lists them, but `added_exclusions` could not record them, so a
    /// destroy would leave them in place. Documented in the resource's description.
    Unowned(usize),
    /// The fault (or kill) never happened: the run finished before reaching it.
    NotReached,
    /// Anything else: the reason, with the evidence.
    Failed(String),
}

impl Outcome {
    fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    fn label(&self) -> String {
        match self {
            Outcome::Converged => "converged".into(),
            Outcome::Recovered(_) => "error, next apply converged".into(),
            Outcome::Imported(_) => "error naming an import; converged after it".into(),
            Outcome::Unowned(n) => format!("converged; {n} exclusion entries unowned"),
            Outcome::NotReached => "not reached".into(),
            Outcome::Failed(_) => "**FAILED**".into(),
        }
    }
}

/// A tenant and a working directory with the quickstart, and what the tenant held before.
struct Stack {
    tenant: FakeTenant,
    ws: Workspace,
    baseline: Json,
}

impl Stack {
    fn new(terraform: &'static Terraform, config: &str) -> Stack {
        let tenant = FakeTenant::start();
        let ws = Workspace::new(terraform, tenant.provider_env());
        crate::harness::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/modules"),
            &ws.dir().join("modules"),
        );
        ws.write_config(config);
        let baseline = tenant.dump();
        Stack {
            tenant,
            ws,
            baseline,
        }
    }

    /// After the last apply: a plan of the same config is empty, and state equals the tenant
    /// with no duplicate and no orphan. `Err` says what is wrong.
    fn converged(&self) -> Result<(), String> {
        self.verdict()?.into_result()
    }

    /// The plan after apply must be empty and the tenant's answers must match the specs
    /// (`Err` otherwise); then what comparing state with the tenant found.
    fn verdict(&self) -> Result<convergence::Verdict, String> {
        let plan = self.ws.run(PLAN);
        match plan.exit_code {
            Some(0) => {}
            Some(2) => return Err(format!("the plan after apply is not empty\n{plan}")),
            _ => return Err(format!("the plan after apply failed\n{plan}")),
        }
        let violations = self.tenant.admin("GET", "/spec-violations", None);
        if let Some(v) = violations["value"].as_array().filter(|v| !v.is_empty()) {
            return Err(format!(
                "the tenant answered bodies that do not match specs/: {v:#?}"
            ));
        }
        let state: State = self.ws.state();
        Ok(convergence::compare(
            &[&state],
            &self.baseline,
            &self.tenant.dump(),
        ))
    }

    /// An apply that failed must have said why in a diagnostic a person can act on: an
    /// `Error:` summary, and no crash.
    fn clear_diagnostic(text: &str) -> Result<String, String> {
        if let Some(crash) = ["panicked", "plugin crashed", "Plugin did not respond"]
            .iter()
            .find(|m| text.contains(*m))
        {
            return Err(format!("the apply crashed ({crash})"));
        }
        text.lines()
            .find_map(|l| {
                l.trim_start_matches(['│', ' '])
                    .strip_prefix("Error: ")
                    .map(str::to_owned)
            })
            .ok_or_else(|| "the apply failed without an error diagnostic".to_owned())
    }
}

/// Runs `jobs` on `workers` threads (each job is an e2e run with its own tenant; they mostly
/// wait on the network and on the provider's consistency waits, so more of them than cores
/// keeps the machine busy without overloading it). Results come back in job order; a job that
/// panics yields `on_panic(message)` and the others go on.
fn run_parallel<J, R>(
    jobs: &[J],
    workers: usize,
    run: impl Fn(&J) -> R + Sync,
    on_panic: impl Fn(String) -> R + Sync,
) -> Vec<R>
where
    J: Sync,
    R: Send,
{
    let next = Mutex::new(0usize);
    let results: Mutex<BTreeMap<usize, R>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let index = {
                    let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(job) = jobs.get(index) else {
                    return;
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job)))
                    .unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_else(|| "panicked".into());
                        on_panic(message)
                    });
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(index, result);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_values()
        .collect()
}

/// Threads for a family: `BREAKGLASS_RELIABILITY_WORKERS`, else `default`.
fn workers(default: usize) -> usize {
    std::env::var("BREAKGLASS_RELIABILITY_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A running `terraform` command whose output is collected on the side.
struct Running {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    drains: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(ws: &Workspace, args: &[&str]) -> Running {
        let mut cmd = ws.command(args, &[]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start terraform");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut drains = Vec::new();
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for mut pipe in pipes {
            let output = output.clone();
            drains.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            }));
        }
        Running {
            child,
            output,
            drains,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (at most `limit`) and returns the exit code (`None` when killed) and the output.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for d in self.drains {
            let _ = d.join();
        }
        let text = String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|p| p.into_inner()))
            .into_owned();
        (status.and_then(|s| s.code()), text)
    }
}

/// Processes whose parent is `pid` (from `/proc/*/stat`), with their executable's file name.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split after the
        // last `)`.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            let exe = std::fs::read_link(format!("/proc/{child}/exe"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            out.push((child, exe));
        }
    }
    out
}

/// The provider processes Terraform `pid` has started and that are still running.
fn provider_processes(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|(_, exe)| exe.starts_with("terraform-provider-breakglass"))
        .map(|(p, _)| p)
        .collect()
}

/// Whether process `pid` still exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// SIGKILL through the system's `kill`: the process is not our child, so std cannot signal it.
fn sigkill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Where a family's figures go: `target/reliability/<name>.md`.
fn write_report(name: &str, markdown: &str) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("reliability");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.md")), markdown);
}

/// The commit under test, for the report header (`git rev-parse`, if git is there).
fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}
