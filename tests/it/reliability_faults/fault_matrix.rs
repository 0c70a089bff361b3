//! The fault matrix: every step of a quickstart apply × every fault the emulated tenant can
//! inject, plus replication lag.
//!
//! The steps are data: a clean apply of the quickstart is run first and every distinct
//! method + path template in the tenant's request log is a step (templates from the vendored
//! API descriptions through `fake_tenant::spec::operation_path_pattern`; the token endpoint by
//! its shape). Resources added to the quickstart bring their requests into the matrix without
//! a change here. Each cell is a fresh tenant where one fault rule hits the first request of
//! its step (soak: also the middle and the last one); the apply must converge, or fail with
//! a clear diagnostic after which the next apply converges — and then state must equal the
//! tenant with no duplicate and no orphan.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use fake_tenant::spec::{self, Api};
use serde_json::{json, Value as Json};

use super::{
    commit, quickstart, run_parallel, soak, workers, write_report, Outcome, Running, Stack, APPLY,
};
use crate::harness::{requires_terraform, Terraform};

/// One step of the quickstart: a method on a path template.
#[derive(Debug, Clone)]
struct StepKind {
    method: String,
    template: String,
    /// Anchored regex matching every request of the step, whatever its ids.
    pattern: String,
    /// Requests of this step in the clean apply.
    count: usize,
}

/// The steps of a clean apply, in the order they first appear.
fn steps(log: &[Json]) -> Vec<StepKind> {
    let mut steps: Vec<StepKind> = Vec::new();
    for entry in log {
        let method = entry["method"].as_str().unwrap_or_default().to_owned();
        let path = entry["path"].as_str().unwrap_or_default();
        let query = entry["query"].as_str().unwrap_or_default();
        let (pattern, template) = template_of(&entry["family"], &method, path, query);
        match steps
            .iter_mut()
            .find(|s| s.method == method && s.template == template)
        {
            Some(step) => step.count += 1,
            None => steps.push(StepKind {
                method,
                template,
                pattern,
                count: 1,
            }),
        }
    }
    steps
}

/// `(pattern, template)` of one logged request.
fn template_of(family: &Json, method: &str, path: &str, query: &str) -> (String, String) {
    let api = match family.as_str() {
        Some("graph" | "graph-conditional-access") => Some(Api::Graph),
        Some("arm") => Some(Api::Arm),
        _ => None,
    };
    let http_method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    if let Some(found) =
        api.and_then(|api| spec::operation_path_pattern(api, &http_method, path, query))
    {
        return found;
    }
    // The token endpoint and anything outside the descriptions: GUID-shaped segments (tenant
    // ids, object ids) are the parameters.
    let (mut pattern, mut template) = (String::from("(?i)^"), String::new());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        pattern.push('/');
        template.push('/');
        if uuid::Uuid::parse_str(segment).is_ok() {
            pattern.push_str("[^/]+");
            template.push_str("{id}");
        } else {
            pattern.push_str(&regex::escape(segment));
            template.push_str(segment);
        }
    }
    pattern.push('$');
    (pattern, template)
}

/// What a cell injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Status {
        code: u16,
        retry_after: Option<u64>,
    },
    DropBeforeResponse,
    DropAfterCommit,
    /// Slower than the provider's per-request timeout (60 s, `RetryPolicy::request_timeout`).
    Slow,
    /// Graph and ARM reads lag writes by this many seconds; no fault rule.
    Lag(u64),
}

/// The provider gives up on one exchange after 60 s (`src/azure/retry.rs`); the slow fault
/// answers 5 s later than that.
const SLOW_MS: u64 = 65_000;

impl Fault {
    fn name(self) -> String {
        match self {
            Fault::Status {
                code,
                retry_after: Some(s),
            } => format!("{code} + Retry-After {s}s"),
            Fault::Status { code, .. } => code.to_string(),
            Fault::DropBeforeResponse => "drop before response".into(),
            Fault::DropAfterCommit => "drop after commit".into(),
            Fault::Slow => "slower than timeout".into(),
            Fault::Lag(s) => format!("replication lag {s}s"),
        }
    }

    fn rule(self) -> Json {
        match self {
            Fault::Status { code, retry_after } => {
                json!({"status": code, "retry_after": retry_after})
            }
            Fault::DropBeforeResponse => json!({"drop_connection": "before_response"}),
            Fault::DropAfterCommit => json!({"drop_connection": "after_commit"}),
            Fault::Slow => json!({"delay_ms": SLOW_MS}),
            Fault::Lag(_) => Json::Null,
        }
    }

    /// Whether `make test` tries this fault on a read step. Reads are idempotent and the
    /// client treats every 5xx alike there, so one 5xx (503) stands for all of them next to
    /// 429 with and without `Retry-After` and both drops; writes (and a soak) get every fault.
    fn on_reads_in_make_test(self) -> bool {
        !matches!(
            self,
            Fault::Status {
                code: 500 | 502 | 504,
                ..
            } | Fault::Slow
        )
    }

    /// The faults every step gets.
    fn per_step() -> Vec<Fault> {
        let status = |code, retry_after| Fault::Status { code, retry_after };
        vec![
            status(429, Some(1)),
            status(429, None),
            status(500, None),
            status(502, None),
            status(503, None),
            status(504, None),
            Fault::DropBeforeResponse,
            Fault::DropAfterCommit,
            Fault::Slow,
        ]
    }
}

/// One cell: a fault at one occurrence of one step (or a lag setting for the whole apply).
#[derive(Debug, Clone)]
struct Cell {
    step: Option<usize>,
    /// Which request of the step the rule hits (0 = the first).
    occurrence: usize,
    fault: Fault,
}

/// The replication lags tried (seconds). 0 s is every other cell. `make test` tries 5 s (every
/// consistency wait sees stale reads and must outlast them); a soak adds 1 s, 30 s, 60 s and
/// the 120 s Entra documents as an upper bound for most changes.
fn lags() -> Vec<u64> {
    if soak() {
        vec![1, 5, 30, 60, 120]
    } else {
        vec![5]
    }
}

/// The cells of a run. `make test`: the first request of every step; writes (the token
/// request, creates, PATCHes) under every fault, reads under 429 with and without
/// `Retry-After`, 503 and both drops (see `on_reads_in_make_test`; the slow fault takes a
/// minute a cell). Soak: every fault at every step, at the first, middle and last request of
/// the step.
fn cells(steps: &[StepKind]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let mut occurrences = vec![0];
        if soak() {
            occurrences.extend([step.count / 2, step.count.saturating_sub(1)]);
            occurrences.sort_unstable();
            occurrences.dedup();
        }
        for fault in Fault::per_step() {
            let write = step.method != "GET";
            if !(soak() || write || fault.on_reads_in_make_test()) {
                continue;
            }
            for &occurrence in &occurrences {
                cells.push(Cell {
                    step: Some(i),
                    occurrence,
                    fault,
                });
            }
        }
    }
    for lag in lags() {
        cells.push(Cell {
            step: None,
            occurrence: 0,
            fault: Fault::Lag(lag),
        });
    }
    // The long cells first, so the short ones fill the time they wait.
    cells.sort_by_key(|c| match c.fault {
        Fault::Lag(s) => std::cmp::Reverse(s * 4),
        Fault::Slow => std::cmp::Reverse(SLOW_MS / 1000),
        _ => std::cmp::Reverse(0),
    });
    cells
}

/// A generous bound on one apply (the slowest cell waits out 120 s of lag several times).
const APPLY_LIMIT: Duration = Duration::from_secs(1200);

fn run_cell(
    terraform: &'static Terraform,
    config: &str,
    steps: &[StepKind],
    cell: &Cell,
) -> Outcome {
    let stack = Stack::new(terraform, config);
    let mut rule_id = None;
    match (cell.step, cell.fault) {
        (None, Fault::Lag(seconds)) => {
            let ms = seconds * 1000;
            stack.tenant.admin(
                "PUT",
                "/settings",
                Some(&json!({"graph.replication_lag_ms": ms, "arm.replication_lag_ms": ms})),
            );
        }
        (Some(i), fault) => {
            let mut rule = fault.rule();
            rule["method"] = json!(steps[i].method);
            rule["path"] = json!(steps[i].pattern);
            rule["after"] = json!(cell.occurrence);
            rule["times"] = json!(1);
            let added = stack.tenant.admin("POST", "/faults", Some(&rule));
            rule_id = added["value"][0]["id"].as_u64();
        }
        (None, _) => unreachable!("only lag cells have no step"),
    }

    let (code, text) = Running::start(&stack.ws, APPLY).finish(APPLY_LIMIT);
    if let Some(id) = rule_id {
        let rules = stack.tenant.admin("GET", "/faults", None);
        let hits = rules["value"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["id"].as_u64() == Some(id))
            .and_then(|r| r["hits"].as_u64())
            .unwrap_or(0);
        if hits == 0 {
            return if code == Some(0) {
                Outcome::NotReached
            } else {
                Outcome::Failed(format!(
                    "the apply failed before the fault was reached\n{text}"
                ))
            };
        }
        stack.tenant.admin("DELETE", "/faults", None);
    }
    if code == Some(0) {
        return match stack.converged() {
            Ok(()) => Outcome::Converged,
            Err(why) => Outcome::Failed(format!("{why}\n--- apply ---\n{text}")),
        };
    }
    let summary = match Stack::clear_diagnostic(&text) {
        Ok(summary) => summary,
        Err(why) => return Outcome::Failed(format!("{why}\n{text}")),
    };
    let (code, again) = Running::start(&stack.ws, APPLY).finish(APPLY_LIMIT);
    if code != Some(0) {
        return Outcome::Failed(format!(
            "the apply failed ({summary}) and so did the next one\n--- first ---\n{text}\n--- next ---\n{again}"
        ));
    }
    match stack.converged() {
        Ok(()) => Outcome::Recovered(summary),
        Err(why) => Outcome::Failed(format!(
            "{why}\n--- first ---\n{text}\n--- next ---\n{again}"
        )),
    }
}

#[test]
fn quickstart_converges_through_every_fault_at_every_step() {
    let Some(terraform) = requires_terraform("1.0") else {
        return;
    };
    let config = quickstart();
    // The clean apply the steps are read from; it must itself converge.
    let clean = Stack::new(terraform, &config);
    clean.tenant.admin("DELETE", "/requests", None);
    let (code, text) = Running::start(&clean.ws, APPLY).finish(APPLY_LIMIT);
    assert_eq!(code, Some(0), "the clean quickstart apply failed\n{text}");
    let log = clean.tenant.requests();
    clean.converged().expect("the clean apply converges");
    let steps = steps(&log);
    assert!(steps.len() >= 5, "too few steps in {log:#?}");
    drop(clean);

    let mut cells = cells(&steps);
    // For working on one part of the matrix: only the cells whose name matches.
    if let Ok(filter) = std::env::var("BREAKGLASS_MATRIX_FILTER") {
        let re = regex::Regex::new(&filter).expect("BREAKGLASS_MATRIX_FILTER is a regex");
        cells.retain(|c| re.is_match(&format!("{} × {}", step_name(&steps, c), c.fault.name())));
    }
    let outcomes = run_parallel(
        &cells,
        workers(if soak() { 10 } else { 12 }),
        |cell| run_cell(terraform, &config, &steps, cell),
        Outcome::Failed,
    );
    let report = report(&steps, &cells, &outcomes, log.len());
    write_report("fault-matrix", &report);
    let failures: Vec<String> = cells
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_failure())
        .map(|(c, o)| format!("{} × {}: {o:?}", step_name(&steps, c), c.fault.name()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}\n\n{report}",
        failures.len(),
        cells.len(),
        failures.join("\n\n")
    );
}

fn step_name(steps: &[StepKind], cell: &Cell) -> String {
    match cell.step {
        Some(i) if cell.occurrence > 0 => format!(
            "{} {} (request {} of {})",
            steps[i].method,
            steps[i].template,
            cell.occurrence + 1,
            steps[i].count
        ),
        Some(i) => format!("{} {}", steps[i].method, steps[i].template),
        None => "whole apply".into(),
    }
}

/// The cells × outcomes table and the family's figures, as RELIABILITY.md shows them.
fn report(
    steps: &[StepKind],
    cells: &[Cell],
    outcomes: &[Outcome],
    clean_requests: usize,
) -> String {
    let faults = Fault::per_step();
    let mut table: BTreeMap<(usize, usize), Vec<&Outcome>> = BTreeMap::new();
    let mut lag_rows = Vec::new();
    for (cell, outcome) in cells.iter().zip(outcomes) {
        match cell.step {
            Some(i) => {
                let column = faults.iter().position(|f| *f == cell.fault).unwrap_or(0);
                table.entry((i, column)).or_default().push(outcome);
            }
            None => lag_rows.push((cell.fault.name(), outcome)),
        }
    }
    let count = |pick: fn(&Outcome) -> bool| outcomes.iter().filter(|o| pick(o)).count();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Commit `{}`; {} run; {} steps read from a clean apply of {} requests; {} cells.\n",
        commit(),
        if soak() { "soak" } else { "`make test`" },
        steps.len(),
        clean_requests,
        cells.len()
    );
    let _ = writeln!(
        md,
        "| outcome | cells |\n| --- | --- |\n| converged under the fault | {} |\n| clear error, next apply converged | {} |\n| fault not reached | {} |\n| failed (not converged, or a duplicate / orphan / state ≠ tenant) | {} |\n",
        count(|o| matches!(o, Outcome::Converged)),
        count(|o| matches!(o, Outcome::Recovered(_))),
        count(|o| matches!(o, Outcome::NotReached)),
        count(Outcome::is_failure),
    );
    let _ = write!(md, "| step (requests in a clean apply) |");
    for f in &faults {
        let _ = write!(md, " {} |", f.name());
    }
    let _ = write!(md, "\n| --- |");
    for _ in &faults {
        let _ = write!(md, " --- |");
    }
    md.push('\n');
    for (i, step) in steps.iter().enumerate() {
        let _ = write!(
            md,
            "| `{} {}` ({}) |",
            step.method, step.template, step.count
        );
        for column in 0..faults.len() {
            let cell = match table.get(&(i, column)) {
                None => "—".to_owned(),
                Some(outcomes) => short(outcomes),
            };
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md.push('\n');
    for (name, outcome) in lag_rows {
        let _ = writeln!(
            md,
            "- {name} on every Graph and ARM read: {}",
            outcome.label()
        );
    }
    md.push_str(
        "\nC = converged under the fault; R = the apply failed with a clear diagnostic and the \
         next apply converged; – = fault not reached; F = failed; — = not tried in this run. \
         Several letters: the occurrences tried (first, middle, last request of the step).\n",
    );
    let errors: BTreeMap<String, usize> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Recovered(summary) => Some(summary.clone()),
            _ => None,
        })
        .fold(BTreeMap::new(), |mut m, s| {
            *m.entry(s).or_default() += 1;
            m
        });
    if !errors.is_empty() {
        md.push_str("\nDiagnostics of the applies that failed first (summary → cells):\n\n");
        for (summary, n) in errors {
            let _ = writeln!(md, "- {summary} → {n}");
        }
    }
    md
}

fn short(outcomes: &[&Outcome]) -> String {
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Converged => "C",
            Outcome::Recovered(_) => "R",
            Outcome::Imported(_) => "I",
            Outcome::Unowned(_) => "U",
            Outcome::NotReached => "–",
            Outcome::Failed(_) => "**F**",
        })
        .collect::<Vec<_>>()
        .join(" ")
}
