//! Killed applies: a quickstart apply is stopped dead — SIGKILL to the provider process, or
//! (separately) to Terraform — right after the tenant answered its N-th request, for every N of
//! a clean apply; the next apply must converge with no duplicate and no orphan.
//!
//! "After the N-th request" is made exact with a hold rule on the emulated tenant
//! (`{"path": ".*", "after": N, "hold": true}`): requests 1..N are served, request N+1 waits
//! unprocessed; once the tenant has answered N requests and holds the next, the process is
//! killed, and the held request is then dropped without being processed — the run died with it
//! in flight. The provider process is found as a child of the terraform process in `/proc`
//! (its executable is `terraform-provider-breakglass`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::{
    alive, commit, provider_processes, quickstart, run_parallel, sigkill, soak, workers,
    write_report, Outcome, Running, Stack, APPLY,
};
use crate::harness::{convergence, requires_terraform, Terraform};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Provider,
    Terraform,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Provider => "provider",
            Target::Terraform => "terraform",
        }
    }
}

#[derive(Debug, Clone)]
struct Kill {
    /// Requests the tenant answers before the kill.
    after: usize,
    target: Target,
}

/// Longest wait for a run to reach its N-th request, and for a killed run to wind down.
const REACH_LIMIT: Duration = Duration::from_secs(240);
const APPLY_LIMIT: Duration = Duration::from_secs(600);
/// How long an orphaned provider (its terraform killed) may take to notice and exit.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

fn run_kill(terraform: &'static Terraform, config: &str, kill: &Kill) -> Outcome {
    let stack = Stack::new(terraform, config);
    let rule = stack.tenant.admin(
        "POST",
        "/faults",
        Some(&json!({"path": ".*", "after": kill.after, "hold": true, "times": null})),
    );
    let rule_id = rule["value"][0]["id"].as_u64().expect("rule id");
    let mut run = Running::start(&stack.ws, APPLY);
    let started = Instant::now();
    // Wait until N requests are answered and the next one is held (or the apply is over).
    loop {
        if run.exited() {
            stack.tenant.admin("DELETE", "/faults", None);
            let (code, text) = run.finish(APPLY_LIMIT);
            if code != Some(0) {
                return Outcome::Failed(format!(
                    "the apply failed before request {}\n{text}",
                    kill.after + 1
                ));
            }
            return match stack.converged() {
                Ok(()) => Outcome::NotReached,
                Err(why) => Outcome::Failed(why),
            };
        }
        let held = stack.tenant.admin("GET", "/faults", None)["value"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"].as_u64() == Some(rule_id))
            .and_then(|r| r["hits"].as_u64())
            .unwrap_or(0);
        if held > 0 && answered(&stack) >= kill.after {
            break;
        }
        if started.elapsed() > REACH_LIMIT {
            stack.tenant.admin("DELETE", "/faults", None);
            let (_, text) = run.finish(Duration::ZERO);
            return Outcome::Failed(format!(
                "request {} was never reached\n{text}",
                kill.after + 1
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let providers = provider_processes(run.pid());
    let mut orphans = Vec::new();
    match kill.target {
        Target::Provider => {
            if providers.is_empty() {
                stack.tenant.admin("DELETE", "/faults", None);
                let (_, text) = run.finish(Duration::ZERO);
                return Outcome::Failed(format!("no provider process to kill\n{text}"));
            }
            providers.iter().for_each(|p| sigkill(*p));
        }
        Target::Terraform => {
            sigkill(run.pid());
            orphans = providers;
        }
    }
    // The held request goes down with the process that sent it: never processed.
    stack.tenant.admin("DELETE", "/faults", None);
    let (_, killed_output) = run.finish(APPLY_LIMIT);

    // A provider whose terraform is gone must not go on changing the tenant.
    let grace = Instant::now();
    while orphans.iter().any(|p| alive(*p)) && grace.elapsed() < ORPHAN_GRACE {
        std::thread::sleep(Duration::from_millis(50));
    }
    let outlived: Vec<u32> = orphans.iter().copied().filter(|p| alive(*p)).collect();
    outlived.iter().for_each(|p| sigkill(*p));
    if !outlived.is_empty() {
        return Outcome::Failed(format!(
            "provider process(es) {outlived:?} kept running {}s after terraform was killed",
            ORPHAN_GRACE.as_secs()
        ));
    }

    let (code, text) = Running::start(&stack.ws, APPLY).finish(APPLY_LIMIT);
    let mut outcome = Outcome::Converged;
    if code != Some(0) {
        // An object the killed run made but never recorded: the provider refuses to take it
        // over silently and names the import; do what the diagnostic says, as an operator would.
        let summary = Stack::clear_diagnostic(&text);
        let imports = imports_named(&text);
        let (Ok(summary), false) = (summary, imports.is_empty()) else {
            return Outcome::Failed(format!(
                "the apply after the kill failed\n--- killed run ---\n{killed_output}\n--- next apply ---\n{text}"
            ));
        };
        let mut log = String::new();
        for (address, id) in &imports {
            let imported = stack
                .ws
                .run(&["import", "-input=false", "-no-color", address, id]);
            if !imported.success() {
                return Outcome::Failed(format!(
                    "the import the diagnostic names failed\n{imported}\n--- apply ---\n{text}"
                ));
            }
            log.push_str(&imported.to_string());
        }
        let (code, again) = Running::start(&stack.ws, APPLY).finish(APPLY_LIMIT);
        if code != Some(0) {
            return Outcome::Failed(format!(
                "the imports the diagnostics name did not lead to a converging apply\n{log}\n--- apply ---\n{again}"
            ));
        }
        outcome = Outcome::Imported(summary);
    }
    let verdict = match stack.verdict() {
        Ok(v) => v,
        Err(why) => {
            return Outcome::Failed(format!(
                "{why}\n--- killed run ---\n{killed_output}\n--- next apply ---\n{text}"
            ))
        }
    };
    let unowned = unowned_exclusions(&stack, &verdict);
    if verdict.mismatches.is_empty()
        && verdict.duplicates.is_empty()
        && unowned == verdict.orphans.len()
        && unowned > 0
    {
        return Outcome::Unowned(unowned);
    }
    match verdict.into_result() {
        Ok(()) => outcome,
        Err(why) => Outcome::Failed(format!(
            "{why}\n--- killed run ---\n{killed_output}\n--- next apply ---\n{text}"
        )),
    }
}

/// The N values of a run: soak, every N of a clean apply (and one past its end); `make test`,
/// the requests around every kind of write (killed just before the write is processed, and
/// just after it was answered — where an object can be made and not recorded), plus every
/// tenth request.
fn kill_points(log: &[Json]) -> Vec<usize> {
    let total = log.len();
    if soak() {
        return (1..=total + 1).collect();
    }
    let mut points: Vec<usize> = (10..total).step_by(10).collect();
    let mut seen_kinds = Vec::new();
    let writes: Vec<(usize, String)> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e["method"] != "GET" && e["family"] != "token")
        .map(|(i, e)| {
            let path = e["path"].as_str().unwrap_or_default();
            (i, format!("{} {}", e["method"], short_path(path)))
        })
        .collect();
    // First and last write of each kind (the last PATCH of many, not all of them).
    for (i, kind) in &writes {
        if !seen_kinds.contains(kind) {
            seen_kinds.push(kind.clone());
            points.extend([*i, i + 1]);
        }
    }
    if let Some((i, _)) = writes.last() {
        points.extend([*i, i + 1]);
    }
    points.retain(|p| *p >= 1);
    points.sort_unstable();
    points.dedup();
    points
}

#[test]
fn quickstart_converges_after_a_kill_at_every_request() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    let config = quickstart();
    let clean = Stack::new(terraform, &config);
    clean.tenant.admin("DELETE", "/requests", None);
    let (code, text) = Running::start(&clean.ws, APPLY).finish(APPLY_LIMIT);
    assert_eq!(code, Some(0), "the clean quickstart apply failed\n{text}");
    let log = clean.tenant.requests();
    drop(clean);

    let points = kill_points(&log);
    let mut kills: Vec<Kill> = Vec::new();
    for target in [Target::Provider, Target::Terraform] {
        kills.extend(points.iter().map(|&after| Kill { after, target }));
    }
    if let Ok(filter) = std::env::var("BREAKGLASS_KILL_FILTER") {
        let re = regex::Regex::new(&filter).expect("BREAKGLASS_KILL_FILTER is a regex");
        kills.retain(|k| re.is_match(&format!("{} after {}", k.target.name(), k.after)));
    }
    let outcomes = run_parallel(
        &kills,
        workers(10),
        |kill| run_kill(terraform, &config, kill),
        Outcome::Failed,
    );
    let report = report(&log, &kills, &outcomes);
    write_report("killed-applies", &report);
    let failures: Vec<String> = kills
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_failure())
        .map(|(k, o)| {
            format!(
                "{} killed after request {}: {o:?}",
                k.target.name(),
                k.after
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} killed applies did not converge:\n{}\n\n{report}",
        failures.len(),
        kills.len(),
        failures.join("\n\n")
    );
}

fn report(log: &[Json], kills: &[Kill], outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Commit `{}`; {} run; a clean quickstart apply makes {} requests; {} killed applies.\n",
        commit(),
        if soak() { "soak" } else { "`make test`" },
        log.len(),
        kills.len()
    );
    let mut by_target: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for (kill, outcome) in kills.iter().zip(outcomes) {
        let row = by_target.entry(kill.target.name()).or_default();
        match outcome {
            Outcome::NotReached => row[1] += 1,
            o if o.is_failure() => row[2] += 1,
            _ => row[0] += 1,
        }
    }
    md.push_str("| killed | next apply converged | apply ended before N | failed |\n| --- | --- | --- | --- |\n");
    for (target, [ok, unreached, failed]) in by_target {
        let _ = writeln!(md, "| {target} | {ok} | {unreached} | {failed} |");
    }
    md.push_str("\n| N (request answered before the kill) | request N | provider | terraform |\n| --- | --- | --- | --- |\n");
    let mut rows: BTreeMap<usize, [String; 2]> = BTreeMap::new();
    for (kill, outcome) in kills.iter().zip(outcomes) {
        let column = match kill.target {
            Target::Provider => 0,
            Target::Terraform => 1,
        };
        rows.entry(kill.after).or_default()[column] = outcome.label();
    }
    for (n, [provider, terraform]) in rows {
        let request = log
            .get(n.wrapping_sub(1))
            .map(|e| {
                format!(
                    "`{} {}`",
                    e["method"].as_str().unwrap_or("?"),
                    short_path(e["path"].as_str().unwrap_or("?"))
                )
            })
            .unwrap_or_else(|| "(none)".into());
        let _ = writeln!(md, "| {n} | {request} | {provider} | {terraform} |");
    }
    md
}

/// A path with its ids shortened, for the table.
fn short_path(path: &str) -> String {
    path.split('/')
        .map(|s| if s.len() > 24 { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `terraform import ADDRESS ID` the diagnostics tell the operator to run, each `NAME`
/// placeholder filled with the address its diagnostic is about (`with ADDRESS,`, which may be
/// inside a module and carry an instance key).
fn imports_named(output: &str) -> Vec<(String, String)> {
    let flat = output.split_whitespace().collect::<Vec<_>>().join(" ");
    let command =
        regex::Regex::new(r"terraform import (\S+?)\.(?:NAME|<name>) (\S+)").expect("regex");
    let with = regex::Regex::new(r"with (\S+),").expect("regex");
    let mut out = Vec::new();
    for diagnostic in flat.split("Error: ").skip(1) {
        let (Some(caps), Some(at)) = (command.captures(diagnostic), with.captures(diagnostic))
        else {
            continue;
        };
        let (kind, id, address) = (&caps[1], caps[2].to_owned(), at[1].to_owned());
        let resource_type = address
            .rsplit_once('.')
            .map(|(head, _)| head.rsplit('.').next().unwrap_or(head))
            .unwrap_or_default();
        if resource_type == kind && !out.iter().any(|(a, _)| *a == address) {
            out.push((address, id));
        }
    }
    out
}

/// Orphans that are exclusion entries of a principal some `breakglass_ca_exclusion` in state
/// excludes: entries the killed run added before Terraform could record them.
fn unowned_exclusions(stack: &Stack, verdict: &convergence::Verdict) -> usize {
    let state = stack.ws.state();
    let principals: Vec<String> = state
        .resources()
        .into_iter()
        .filter(|(address, _)| address.contains("breakglass_ca_exclusion."))
        .flat_map(|(_, values)| {
            ["user_ids", "group_ids"]
                .iter()
                .flat_map(|k| values[*k].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v.as_str().map(str::to_ascii_lowercase))
                .collect::<Vec<_>>()
        })
        .collect();
    verdict
        .orphan_keys
        .iter()
        .filter(|(kind, key)| {
            *kind == convergence::CA_EXCLUSION
                && key
                    .rsplit('/')
                    .next()
                    .is_some_and(|p| principals.iter().any(|x| x == p))
        })
        .count()
}

/// Requests the tenant has answered (or dropped) so far, from its counters (cheaper to poll
/// than the request log).
fn answered(stack: &Stack) -> usize {
    let counters = stack.tenant.admin("GET", "/counters", None);
    counters["requests"]
        .as_object()
        .into_iter()
        .flat_map(|families| families.values())
        .flat_map(|by_status| by_status.as_object().into_iter().flat_map(|m| m.values()))
        .filter_map(Json::as_u64)
        .sum::<u64>() as usize
}
