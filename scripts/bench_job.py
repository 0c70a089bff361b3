#!/usr/bin/env python3
"""The whole-job measurements of `make bench` (issue 13), called by scripts/bench.sh.

Each subcommand starts its own emulated tenant (the release `breakglass-fake-tenant` given with
--tenant-bin), drives the real terraform against the release provider (installed by bench.sh in
a filesystem mirror named by TF_CLI_CONFIG_FILE), and prints one JSON object per measurement:

  requests    P4: requests per command (quickstart apply, no-change plan, destroy) from the
              tenant's request log, next to the minimum (the table in tests/it/performance.rs
              and BENCHMARKS.md), with PIM at the emulator's default provisioning delay.
  latency     P3: the quickstart apply with LATENCY_MS on every request; Terraform's own
              overhead for the same resources and dependencies (terraform_data, no provider);
              the critical-path bound; the original procedure replayed one request at a time.
  throttled   P5: two accounts excluded from every policy of the `large` seed (195) under the
              documented conditional-access limit (1 request per second per tenant, "Microsoft
              Graph service-specific throttling limits") plus injected 429s with Retry-After.

The tenant's credentials reach terraform through the environment only; nothing here prints
them. Standard library only.
"""

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# The sources measured (examples/, scripts/): bench.sh passes --root (a `git archive` copy for
# BENCH_REV); by default the tree this script is in.
ROOT = os.path.dirname(HERE)


# ------------------------------------------------------------------------------------ tenant
class Tenant:
    def __init__(self, binary, seed="default"):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--seed", seed],
                                     stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline()
        ready = json.loads(line)
        if not ready.get("ready"):
            raise SystemExit("the emulated tenant did not start")
        self.url = ready["url"]
        self.env = {
            "ARM_TENANT_ID": ready["tenant_id"],
            "ARM_CLIENT_ID": ready["client_id"],
            "ARM_CLIENT_SECRET": ready["client_secret"],
            "BREAKGLASS_LOGIN_ENDPOINT": self.url,
            "BREAKGLASS_GRAPH_ENDPOINT": self.url,
            "BREAKGLASS_RESOURCE_MANAGER_ENDPOINT": self.url,
        }
        self.credentials = (ready["tenant_id"], ready["client_id"], ready["client_secret"])

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + "/_fake" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as r:
            text = r.read()
        return json.loads(text) if text else None

    def requests(self):
        return self.admin("GET", "/requests")["value"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def latency_settings(ms):
    return {f"latency.{f}_ms": ms for f in ("graph", "graph-conditional-access", "arm", "token")}


# ------------------------------------------------------------------------------- terraform
def terraform(tf, workdir, args, env, log):
    full = dict(os.environ, **env, TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        rc = subprocess.call([tf, f"-chdir={workdir}", *args], stdin=subprocess.DEVNULL,
                             stdout=out, stderr=out, env=full)
    return rc, (time.perf_counter() - t0) * 1000


APPLY = ["apply", "-auto-approve", "-input=false", "-no-color"]
PLAN = ["plan", "-detailed-exitcode", "-input=false", "-no-color"]
DESTROY = ["destroy", "-auto-approve", "-input=false", "-no-color"]


def quickstart_dir(work, tf, log, with_posture=False):
    """examples/quickstart and its module, initialised (once) in work/."""
    qs = os.path.join(work, "quickstart")
    if not os.path.isdir(qs):
        shutil.copytree(os.path.join(ROOT, "examples", "modules"), os.path.join(work, "modules"))
        os.makedirs(qs)
        for name in os.listdir(os.path.join(ROOT, "examples", "quickstart")):
            if name.endswith(".tf") and (with_posture or name != "posture.tf"):
                shutil.copy(os.path.join(ROOT, "examples", "quickstart", name), qs)
        rc, _ = terraform(tf, qs, ["init", "-input=false", "-no-color"], {}, log)
        if rc != 0:
            raise SystemExit(f"terraform init of the quickstart failed (see {log})")
    return qs


def reset_state(workdir):
    for name in ("terraform.tfstate", "terraform.tfstate.backup"):
        try:
            os.remove(os.path.join(workdir, name))
        except FileNotFoundError:
            pass


def spread(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


# ------------------------------------------------------------------------ P4: the minimum
# The table of tests/it/performance.rs (the derivation is there and in BENCHMARKS.md), for the
# quickstart: 2 accounts on one domain, 2 role assignments of one role, P policies in scope,
# 2 alert rules. `polls` is the least number of status reads PIM needs per request: 0 when it
# answers Provisioned at once, 1 when it answers PendingProvisioning (the emulator's default).
def minimum(command, policies, polls):
    accounts, domains, roles_n, roles, rules = 2, 1, 2, 1, 2
    checks = domains + roles + 1 + 1 + 2          # domain, PIM rules, settings, tables, RA+categories
    refresh = 2 + 1 + 2 * accounts + 2 * roles_n + 1 + 1 + 1 + rules + (1 + 2 * accounts)
    if command == "apply":
        plan_process = 2 + 1 + checks
        apply_process = (2 + checks + 2 + 2 + 3 * accounts + (2 + polls) * roles_n
                         + (policies + 2) + 2 * rules + (2 + 2 * accounts))
        return plan_process + apply_process
    if command == "plan":
        return refresh
    if command == "destroy":
        return refresh + 2 + rules + 1 + 1 + (2 + polls) * roles_n + (policies + 2) + accounts
    raise ValueError(command)


def in_scope(policy):
    users = (policy.get("conditions") or {}).get("users") or {}
    listed = lambda key: bool(users.get(key))
    includes = any(str(u).lower() != "none" for u in users.get("includeUsers") or [])
    return (policy.get("state") in ("enabled", "enabledForReportingButNotEnforced")
            and (includes or listed("includeGroups") or listed("includeRoles")
                 or users.get("includeGuestsOrExternalUsers") is not None))


def policies_in_scope(tenant):
    state = tenant.admin("GET", "/state")
    return sum(1 for p in state["directory"]["conditionalAccessPolicies"] if in_scope(p))


def requests_cmd(a):
    log = os.path.join(a.work, "requests.log")
    qs = quickstart_dir(a.work, a.terraform, log)
    reset_state(qs)
    env = {"TF_VAR_deletion_protection": "false"}
    with Tenant(a.tenant_bin) as t:
        env.update(t.env)
        policies = policies_in_scope(t)
        for command, args in (("apply", APPLY), ("plan", PLAN), ("destroy", DESTROY)):
            t.admin("DELETE", "/requests")
            rc, ms = terraform(a.terraform, qs, args, env, log)
            sent = t.requests()
            polls = sum(1 for e in sent if e["method"] == "GET"
                        and "/roleAssignmentScheduleRequests/" in e["path"])
            print(json.dumps({
                "name": f"requests {command}", "ok": rc == 0, "sent": len(sent),
                "minimum": minimum(command, policies, 0 if command == "plan" else 1),
                "pim_status_reads": polls, "policies": policies, "ms": ms,
            }))


# ------------------------------------------------------------------------ P3: critical path
# The longest chain of requests that must follow one another in a quickstart apply, by the
# resources' dependencies and each API's required sequence (see BENCHMARKS.md): requests that
# do not depend on each other count once (they can be in flight together).
def critical_path(latency_ms, pim_delay_ms):
    chain = [
        ("plan process: sign-in (Graph and ARM tokens at once)", 1),
        ("plan process: plan-time checks (independent reads, at once)", 1),
        ("apply process: sign-in", 1),
        ("account: domain check (Terraform's second plan)", 1),
        ("account: POST /users", 1),
        ("account: read-back and authentication methods (at once)", 1),
        ("role assignment: PIM rules (Terraform's second plan)", 1),
        ("role assignment: POST schedule request", 1),
        ("role assignment: PIM provisions", None),
        ("role assignment: the status read that shows Provisioned", 1),
        ("role assignment: the schedule", 1),
        ("posture: its reads (independent, at once)", 1),
    ]
    requests = sum(n for _, n in chain if n)
    return {"requests_in_chain": requests,
            "chain_ms": requests * latency_ms + pim_delay_ms,
            "steps": [(what, n) for what, n in chain]}


FLOOR_TF = """
terraform { required_version = ">= 1.4" }
# The quickstart's objects and dependencies, with no provider: Terraform's own cost.
resource "terraform_data" "client_config" {}
resource "terraform_data" "account" { count = 2 }
resource "terraform_data" "role" {
  count = 2
  input = terraform_data.account[count.index].id
}
resource "terraform_data" "ca_exclusion" { input = terraform_data.account[*].id }
resource "terraform_data" "diagnostic_setting" {}
resource "terraform_data" "action_group" {}
resource "terraform_data" "signin_alert" {
  input = [terraform_data.account[*].id, terraform_data.diagnostic_setting.id, terraform_data.action_group.id]
}
resource "terraform_data" "posture" {
  input = [terraform_data.role[*].id, terraform_data.ca_exclusion.id, terraform_data.signin_alert.id]
}
output "accounts" { value = terraform_data.account[*].id }
"""


def latency_cmd(a):
    log = os.path.join(a.work, "latency.log")
    qs = quickstart_dir(a.work, a.terraform, log)
    env = {"TF_VAR_deletion_protection": "false"}
    applies, floors, replays, same_work, ok = [], [], [], [], True
    floor_dir = os.path.join(a.work, "floor")
    os.makedirs(floor_dir, exist_ok=True)
    with open(os.path.join(floor_dir, "main.tf"), "w") as f:
        f.write(FLOOR_TF)
    pim_delay, replay_requests, same_work_requests = None, None, None

    def replay(extra):
        """The original procedure against a fresh tenant with the latency: (ms, requests, ok)."""
        with Tenant(a.tenant_bin) as t:
            t.admin("PUT", "/settings", latency_settings(a.latency_ms))
            tenant_id, client_id, secret = t.credentials
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable,
                                   os.path.join(ROOT, "scripts", "original-procedure.py"),
                                   "--url", t.url, "--tenant-id", tenant_id, "--client-id",
                                   client_id, "--client-secret", secret, "--requests", *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            ms = (time.perf_counter() - t0) * 1000
            try:
                count = json.loads(done.stdout)["requests"]
            except ValueError:
                count = None
            return ms, count, done.returncode == 0

    for rep in range(a.reps + 1):           # rep 0 is a discarded warm-up
        with Tenant(a.tenant_bin) as t:
            t.admin("PUT", "/settings", latency_settings(a.latency_ms))
            pim_delay = t.admin("GET", "/settings").get("pim.provisioning_delay_ms", 2000)
            reset_state(qs)
            rc, ms = terraform(a.terraform, qs, APPLY, dict(env, **t.env), log)
            ok &= rc == 0
            if rep:
                applies.append(ms)
        reset_state(floor_dir)
        rc, ms = terraform(a.terraform, floor_dir, APPLY, {}, log)
        ok &= rc == 0
        if rep:
            floors.append(ms)
        ms, replay_requests, done = replay([])
        ok &= done
        if rep:
            replays.append(ms)
        ms, same_work_requests, done = replay(["--same-work"])
        ok &= done
        if rep:
            same_work.append(ms)
    path = critical_path(a.latency_ms, pim_delay if isinstance(pim_delay, int) else 2000)
    floor = statistics.median(floors)
    print(json.dumps({
        "name": "latency", "ok": ok, "latency_ms": a.latency_ms, "pim_delay_ms": pim_delay,
        "apply": spread(applies), "terraform_floor": spread(floors), "replay": spread(replays),
        "critical_path": path, "bound_ms": path["chain_ms"] + floor,
        "replay_requests": replay_requests,
        "replay_same_work": spread(same_work), "replay_same_work_requests": same_work_requests,
    }))


# --------------------------------------------------------------------------- P5: throttled
THROTTLED_TF = """
terraform {
  required_providers {
    breakglass = { source = "registry.terraform.io/breakglass/breakglass" }
  }
}
provider "breakglass" {}
resource "breakglass_account" "a" {
  user_principal_name = "bg-throttled-a@contoso.onmicrosoft.com"
  display_name        = "Throttled tenant A"
  deletion_protection = false
}
resource "breakglass_account" "b" {
  user_principal_name = "bg-throttled-b@contoso.onmicrosoft.com"
  display_name        = "Throttled tenant B"
  deletion_protection = false
}
resource "breakglass_ca_exclusion" "both" {
  user_ids = [breakglass_account.a.object_id, breakglass_account.b.object_id]
}
"""

# A listing older than this is read again before a merge (src/azure/conditional_access.rs).
MAX_BASE_AGE_S = 0.5


def throttled_cmd(a):
    log = os.path.join(a.work, "throttled.log")
    wd = os.path.join(a.work, "throttled")
    os.makedirs(wd, exist_ok=True)
    with open(os.path.join(wd, "main.tf"), "w") as f:
        f.write(THROTTLED_TF)
    rc, _ = terraform(a.terraform, wd, ["init", "-input=false", "-no-color"], {}, log)
    if rc != 0:
        raise SystemExit(f"terraform init failed (see {log})")
    reset_state(wd)
    rate = 1.0                               # requests per second, the documented limit
    with Tenant(a.tenant_bin, "large") as t:
        policies = policies_in_scope(t)
        t.admin("PUT", "/throttle", {"family": "graph-conditional-access", "limit": 1,
                                     "window_s": 1})
        # 429s the throttle does not explain: three PATCHes in a row, twice, with Retry-After.
        faults = [{"method": "PATCH", "path": ".*/identity/conditionalAccess/policies/.*",
                   "status": 429, "retry_after": 1, "after": after, "times": 3}
                  for after in (40, 120)]
        t.admin("POST", "/faults", faults)
        rc, ms = terraform(a.terraform, wd, APPLY, t.env, log)
        sent = t.requests()
        state = t.admin("GET", "/state")
        ca = [e for e in sent if e.get("family") == "graph-conditional-access"]
        accounts = [u["id"] for u in state["directory"]["users"]
                    if u.get("userPrincipalName", "").startswith("bg-throttled-")]
        missing = sum(1 for p in state["directory"]["conditionalAccessPolicies"]
                      if in_scope(p) and not all(
                          i in (p["conditions"]["users"].get("excludeUsers") or [])
                          for i in accounts))
        plan_rc, _ = terraform(a.terraform, wd, PLAN, t.env, log)
    # Needed: one listing, one PATCH per policy, one verifying listing, and a listing again
    # whenever the last one is older than MAX_BASE_AGE_S: at the allowed rate a listing serves
    # the PATCHes of the next MAX_BASE_AGE_S seconds, less its own slot — at one request per
    # second and half a second, just the next one: a read per PATCH, as a GET before each
    # PATCH would be.
    per_listing = max(1, int(MAX_BASE_AGE_S * rate) - 1)
    needed = policies + 2 + max(0, math.ceil(policies / per_listing) - 1)
    print(json.dumps({
        "name": "throttled", "ok": rc == 0 and missing == 0 and len(accounts) == 2,
        "plan_after_exit": plan_rc, "policies": policies, "ms": ms,
        "ca_requests": len(ca),
        "ca_throttled": sum(1 for e in ca if e.get("status") == 429 and not e.get("fault")),
        "ca_injected": sum(1 for e in ca if (e.get("fault") or {}).get("kind") == "status"),
        "needed": needed, "needed_strict": policies + 2, "rate": rate,
        "bound_ms": needed / rate * 1000, "bound_strict_ms": (policies + 2) / rate * 1000,
        "missing_exclusions": missing,
    }))


# ---------------------------------------------------------------------------------- report
def fmt_s(ms):
    return f"{ms / 1000:.2f}"


def report_cmd(a):
    rows = {}
    for line in open(a.results):
        if line.strip():
            r = json.loads(line)
            rows[r["name"]] = r
    out = ["", "### The whole job (issue 13), same run", ""]
    out += ["| goal | measured | reference | ratio | goal met |", "|---|---:|---:|---:|:---:|"]
    ok_all = True

    def row(goal, measured, reference, ratio, met):
        nonlocal ok_all
        ok_all &= bool(met)
        out.append(f"| {goal} | {measured} | {reference} | {ratio} | {'yes' if met else '**no**'} |")

    ours = rows.get("breakglass")
    if ours:
        rss = ours["mtls"]["rss_kb"]
        if rss:
            mib = rss["median"] / 1024
            row("P2 VmRSS 1 s after the AutoMTLS handshake ≤ 5 MiB", f"{mib:.2f} MiB",
                "5 MiB", f"{mib / 5:.2f}", mib <= 5)
        size = ours["size"] / 1048576
        row("P2 release binary ≤ 9.7 MiB", f"{size:.2f} MiB", "9.7 MiB", f"{size / 9.7:.2f}",
            size <= 9.7)
    for command in ("apply", "plan", "destroy"):
        r = rows.get(f"requests {command}")
        if r:
            ratio = r["sent"] / r["minimum"]
            polls = f", {r['pim_status_reads']} PIM status reads" if command != "plan" else ""
            row(f"P4 requests, quickstart {command} ≤ 1.1 × minimum",
                f"{r['sent']}{polls}", f"{r['minimum']} (minimum)", f"{ratio:.2f}",
                r["ok"] and ratio <= 1.1)
    lat = rows.get("latency")
    if lat and lat["apply"]:
        apply = lat["apply"]["median"]
        bound = lat["bound_ms"]
        row(f"P3 quickstart apply, {lat['latency_ms']} ms per request ≤ 1.25 × bound",
            f"{fmt_s(apply)} s", f"{fmt_s(bound)} s (bound)", f"{apply / bound:.2f}",
            lat["ok"] and apply <= 1.25 * bound)
        replay = lat["replay"]["median"]
        row("P3 … and below the original procedure replayed as it is", f"{fmt_s(apply)} s",
            f"{fmt_s(replay)} s (replay)", f"{apply / replay:.2f}", apply < replay)
        if lat.get("replay_same_work"):
            same = lat["replay_same_work"]["median"]
            out.append(f"| (for scale) … and below the procedure doing the quickstart's work, "
                       f"one request after another | {fmt_s(apply)} s | {fmt_s(same)} s "
                       f"(replay, --same-work) | {apply / same:.2f} | "
                       f"{'yes' if apply < same else 'no'} |")
    thr = rows.get("throttled")
    if thr:
        row("P5 2 accounts × 195 policies at 1 request/s: 0 failures, ≤ 1.1 × bound",
            f"{fmt_s(thr['ms'])} s, {'0 failures' if thr['ok'] else 'FAILED'}",
            f"{fmt_s(thr['bound_ms'])} s (bound)", f"{thr['ms'] / thr['bound_ms']:.2f}",
            thr["ok"] and thr["ms"] <= 1.1 * thr["bound_ms"])
    out.append("")
    if lat and lat["apply"]:
        cp = lat["critical_path"]
        out.append(f"P3 details ({lat['apply']['n']} runs each, median (min–max), seconds): "
                   f"apply {fmt_s(lat['apply']['median'])} ({fmt_s(lat['apply']['min'])}–"
                   f"{fmt_s(lat['apply']['max'])}); Terraform alone on the same objects and "
                   f"dependencies (terraform_data) {fmt_s(lat['terraform_floor']['median'])}; "
                   f"critical path {cp['requests_in_chain']} requests × {lat['latency_ms']} ms "
                   f"+ PIM provisioning {lat['pim_delay_ms']} ms = {fmt_s(cp['chain_ms'])}; "
                   f"bound = path + Terraform = {fmt_s(lat['bound_ms'])}; the original "
                   f"procedure replayed (one account, no wait for PIM, "
                   f"{lat.get('replay_requests')} requests one after another) "
                   f"{fmt_s(lat['replay']['median'])}; the same procedure doing the "
                   f"quickstart's work (two accounts, each role waited for, exclusions added; "
                   f"{lat.get('replay_same_work_requests')} requests) "
                   f"{fmt_s((lat.get('replay_same_work') or {}).get('median', 0))}.")
        out.append("")
        out.append("Critical path: " + "; ".join(
            f"{what} ({'PIM' if n is None else n})" for what, n in cp["steps"]) + ".")
        out.append("")
    if thr:
        out.append(f"P5 details: {thr['policies']} policies in scope; {thr['ca_requests']} "
                   f"conditional-access requests sent ({thr['ca_injected']} answered by injected "
                   f"429s, {thr['ca_throttled']} refused by the limit); needed {thr['needed']} "
                   f"(one PATCH per policy, a listing before and after, and a read again "
                   f"before each PATCH whose copy is over {MAX_BASE_AGE_S} s old — at this "
                   f"rate every one) → bound "
                   f"{fmt_s(thr['bound_ms'])} s at {thr['rate']:g} request/s; against the "
                   f"strict bound ({thr['needed_strict']} requests, no listing again) the ratio "
                   f"is {thr['ms'] / thr['bound_strict_ms']:.2f}; plan after apply exit code "
                   f"{thr['plan_after_exit']} (0 = no changes); policies lacking an exclusion: "
                   f"{thr['missing_exclusions']}.")
        out.append("")
    for command in ("apply", "plan", "destroy"):
        r = rows.get(f"requests {command}")
        if r:
            pim = ("" if command == "plan" else
                   " with PIM at its default provisioning delay (one status read per PIM "
                   "request; the e2e test, with PIM answering at once, asserts the same table "
                   "without them)")
            out.append(f"P4 {command}: {r['sent']} requests ({fmt_s(r['ms'])} s, no latency), "
                       f"minimum {r['minimum']}{pim}.")
    print("\n".join(out))
    if not ok_all:
        print("\nSome goals were not met (rows marked **no**).")


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["requests", "latency", "throttled", "report"])
    ap.add_argument("--tenant-bin")
    ap.add_argument("--terraform")
    ap.add_argument("--work")
    ap.add_argument("--root", help="the sources measured (default: this script's tree)")
    ap.add_argument("--results", help="report: the results.jsonl of bench.sh")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-ms", type=int, default=20)
    a = ap.parse_args()
    if a.root:
        global ROOT
        ROOT = os.path.abspath(a.root)
    if a.command == "report":
        return report_cmd(a)
    os.makedirs(a.work, exist_ok=True)
    {"requests": requests_cmd, "latency": latency_cmd, "throttled": throttled_cmd}[a.command](a)


if __name__ == "__main__":
    main()
