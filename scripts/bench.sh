#!/usr/bin/env bash
# `make bench`: measures the release provider the way Terraform uses it and prints a markdown table.
#
# Terraform starts a fresh provider process several times per command (3 for a plan, 4 for an apply,
# 5 for a destroy), so for the small configurations break-glass accounts live in, start-up, the
# go-plugin handshake and the first RPCs are much of the provider's cost. Measured here, with the real
# terraform binary:
#
#   * exec -> handshake line on stdout, plain and with a client certificate in PLUGIN_CLIENT_CERT
#     (AutoMTLS, as Terraform always sends one): median (min-max) of HS_RUNS after HS_WARMUP;
#   * VmRSS / VmHWM of the provider 1 s after the handshake (median of RSS_RUNS);
#   * the binary's size;
#   * `terraform providers schema -json` (one provider start + GetProviderSchema), median of SCHEMA_REPS;
#   * `terraform plan` of examples/quickstart against the emulated tenant (token endpoint + Graph),
#     median of PLAN_REPS, plus provider starts per plan (from TF_LOG=debug) and requests the tenant
#     served per plan (from its request log);
#   * floors: the same harness on /bin/echo, and the same terraform commands with no provider at all.
#   * the whole job (issue 13, scripts/bench_job.py): requests per command against the minimum
#     (quickstart apply, no-change plan, destroy); the quickstart apply with LATENCY_MS added to
#     every request, next to its critical-path bound (plus Terraform's own time on the same
#     objects, terraform_data) and the original procedure replayed one request at a time; two
#     accounts excluded from 195 policies under the documented conditional-access limit (1
#     request/s) with injected 429s, next to the bound that limit imposes. Each goal is printed
#     with its reference and ratio.
#
# Peers: if PEERS_SH names a peer script (default ../shared/bench/peers.sh when present; PEERS_SH=none
# skips), it runs in the same invocation with our binary as an extra provider, so Go providers and ours
# are measured on the same machine at the same moment.
#
# Knobs (environment):
#   HS_RUNS (40), HS_WARMUP (3), RSS_RUNS (3), SCHEMA_REPS (10), PLAN_REPS (10)   repetitions
#   JOB_REPS (3)      quickstart applies with latency (each with a fresh tenant, after a warm-up)
#   LATENCY_MS (20)   added by the emulated tenant to every request of the latency runs
#   BENCH_THROTTLED=0 skip the throttled-tenant run (about four minutes)
#   BENCH_REV         a commit to build from `git archive` and measure instead of the working tree
#   BENCH_TARGET_DIR  cargo target dir for BENCH_REV builds (default target/bench)
#   BENCH_BUILD=0     measure the release binaries already built, without building
#   TERRAFORM         terraform to use (default: the one scripts/ensure-terraform.sh picks)
#   PEERS_SH          peer script (default ../shared/bench/peers.sh if present; none = skip)
#   OUT_MD            also write the report there;  KEEP_WORK=1 keeps the scratch dir and its logs
# The peer script sees the same environment: HS_RUNS, HS_WARMUP, RSS_RUNS and SCHEMA_REPS apply to it
# too, as do its own knobs (CYCLE_REPS, CYCLE_NS, BENCH_OLD_TF, BENCH_CACHE).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

HS_RUNS=${HS_RUNS:-40}
HS_WARMUP=${HS_WARMUP:-3}
RSS_RUNS=${RSS_RUNS:-3}
SCHEMA_REPS=${SCHEMA_REPS:-10}
PLAN_REPS=${PLAN_REPS:-10}
JOB_REPS=${JOB_REPS:-3}
LATENCY_MS=${LATENCY_MS:-20}
export HS_RUNS HS_WARMUP RSS_RUNS SCHEMA_REPS
PYTHON=${PYTHON:-python3}
# Terraform's documented go-plugin magic cookie: not a secret, only a guard against running a
# plugin binary by hand.
MAGIC_COOKIE=d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

command -v "$PYTHON" >/dev/null || die "python3 is needed for the timing harness"
command -v openssl >/dev/null || die "openssl is needed to make an AutoMTLS client certificate"

peers_sh=${PEERS_SH:-}
if [[ -z "$peers_sh" && -f "$root/../shared/bench/peers.sh" ]]; then
  peers_sh="$root/../shared/bench/peers.sh"
fi
[[ "$peers_sh" == none ]] && peers_sh=""
[[ -z "$peers_sh" || -f "$peers_sh" ]] || die "PEERS_SH=$peers_sh does not exist"

work="$(mktemp -d -t breakglass-bench.XXXXXX)"
tenant_pid=""
cleanup() {
  if [[ -n "$tenant_pid" ]]; then
    kill "$tenant_pid" 2>/dev/null || true
    wait "$tenant_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then log "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [[ -n "${TERRAFORM:-}" ]]; then
  terraform="$(command -v "$TERRAFORM")" || die "TERRAFORM=$TERRAFORM not found"
else
  terraform="$(scripts/ensure-terraform.sh | sed -n 's/^terraform: using \(.*\) (version .*)$/\1/p' | tail -n 1)"
fi
[[ -x "$terraform" ]] || die "no usable terraform"

# ------------------------------------------------------------------------------------------ build
# By default the working tree is measured. BENCH_REV measures a committed revision instead, built
# from a `git archive` copy: a tree that others are editing may not even compile, and the numbers
# should name exactly what was measured. It gets its own target dir so target/release is untouched.
src="$root"
revision="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "${BENCH_REV:-}" ]]; then
  commit="$(git rev-parse --short "$BENCH_REV^{commit}")" || die "BENCH_REV=$BENCH_REV is not a commit"
  revision="commit $commit"
  src="$work/src"
  mkdir -p "$src"
  git archive "$commit" | tar -x -C "$src"
  target="${BENCH_TARGET_DIR:-$root/target/bench}"
elif ! git diff --quiet HEAD -- src fake-tenant Cargo.toml Cargo.lock build.rs proto 2>/dev/null; then
  revision+=" + uncommitted changes"
fi
if [[ "${BENCH_BUILD:-1}" != 0 ]]; then
  log "cargo build --release of $revision (provider, then the emulated tenant) into $target"
  # Two builds: together, cargo would give the provider the tenant's tokio features (its
  # multi-threaded scheduler), which the shipped binary (`make release`: the provider alone)
  # does not have.
  (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --quiet \
    -p terraform-provider-breakglass --bin terraform-provider-breakglass \
    && CARGO_TARGET_DIR="$target" cargo build --release --quiet -p breakglass-fake-tenant --bins) \
    || die "the release build of $revision failed (BENCH_REV=HEAD measures the last commit)"
else
  revision="binaries already in $target/release (not rebuilt; the tree is at $revision)"
fi
for b in terraform-provider-breakglass breakglass-fake-tenant; do
  [[ -x "$target/release/$b" ]] || die "$target/release/$b is missing (run without BENCH_BUILD=0)"
done

# Private copies: other builds in this tree may replace target/release while we measure.
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/Cargo.toml" | head -n 1)"
platform="$(uname -s | tr '[:upper:]' '[:lower:]')_$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')"
mkdir -p "$work/bin"
cp -p "$target/release/terraform-provider-breakglass" "$target/release/breakglass-fake-tenant" "$work/bin/"
provider="$work/bin/terraform-provider-breakglass"

# Terraform must not reach out, and installs the provider only from a private filesystem mirror.
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_LOG TF_LOG_PATH TF_LOG_PROVIDER TF_PLUGIN_CACHE_DIR TF_DATA_DIR TF_CLI_ARGS TF_REATTACH_PROVIDERS || true
mirror_dir="$work/mirror/registry.terraform.io/breakglass/breakglass/$version/$platform"
mkdir -p "$mirror_dir"
cp "$provider" "$mirror_dir/terraform-provider-breakglass_v$version"
cat >"$work/terraformrc" <<EOF
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$work/mirror"
    include = ["registry.terraform.io/breakglass/breakglass"]
  }
}
EOF
export TF_CLI_CONFIG_FILE="$work/terraformrc"

# Terraform's AutoMTLS client certificate is a self-signed ECDSA P-521 certificate for "localhost".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -days 1 -subj "/CN=localhost" \
  -keyout "$work/client.key" -out "$work/client.pem" >/dev/null 2>&1 \
  || die "openssl could not make the client certificate"

# ------------------------------------------------------------------------------ timing harness
cat >"$work/bench.py" <<'PY'
"""Timing harness for scripts/bench.sh: exec->handshake, RSS, repeated commands, the report."""
import json, os, select, shutil, signal, statistics, subprocess, sys, tempfile, time


def status_kb(pid):
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def start_until_handshake(argv, env, rss_wait=0.0, timeout=20.0):
    """Starts argv and waits for its first stdout line. Returns (ms, line, /proc status, error)."""
    scratch = tempfile.mkdtemp(prefix="hs")
    env = dict(env, TMPDIR=scratch, PLUGIN_UNIX_SOCKET_DIR=scratch)
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, close_fds=True)
    out, error, status = b"", None, {}
    deadline = time.monotonic() + timeout
    while b"\n" not in out:
        left = deadline - time.monotonic()
        if left <= 0:
            error = "no handshake line within %.0f s" % timeout
            break
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                error = "stdout closed before the handshake (exit %s)" % proc.poll()
                break
            out += chunk
    elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
    line = out.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if error is None and rss_wait:
        time.sleep(rss_wait)
        if proc.poll() is not None:
            error = "the provider exited while idle (rc %s)" % proc.returncode
        status = status_kb(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return elapsed_ms, line, status, error


def spread(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def handshake(args):
    """handshake NAME BINARY|floor RUNS WARMUP RSS_RUNS CERT_PEM -> one JSON object."""
    name, binary, runs, warmup, rss_runs, cert = args
    runs, warmup, rss_runs = int(runs), int(warmup), int(rss_runs)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("PLUGIN_", "TF_PLUGIN_", "TF_LOG", "BENCH_"))}
    base.update({"TF_PLUGIN_MAGIC_COOKIE": os.environ["BENCH_MAGIC_COOKIE"],
                 "PLUGIN_PROTOCOL_VERSIONS": "5,6",
                 "PLUGIN_MIN_PORT": "10000", "PLUGIN_MAX_PORT": "25000"})
    with open(cert) as f:
        mtls = dict(base, PLUGIN_CLIENT_CERT=f.read())
    floor = binary == "floor"
    # The floor is what the harness itself costs: fork/exec of a trivial binary that prints a line.
    argv = ["/bin/echo", "1|6|tcp|127.0.0.1:1|grpc|"] if floor else [binary]
    result = {"name": name}
    for mode, env in (("plain", base), ("mtls", mtls)):
        times, errors, line = [], [], ""
        for i in range(warmup + runs):
            ms, line, _, err = start_until_handshake(argv, env)
            if err:
                errors.append(err)
                continue
            fields = line.split("|")
            # core version 1, protocol 6; with AutoMTLS the sixth field carries the server cert.
            if fields[:2] != ["1", "6"] or (mode == "mtls" and not floor and
                                           (len(fields) < 6 or not fields[5])):
                errors.append("unexpected handshake line: " + line[:80])
                continue
            if i >= warmup:
                times.append(ms)
        rss, hwm = [], []
        for _ in range(0 if floor else rss_runs):
            _, _, st, err = start_until_handshake(argv, env, rss_wait=1.0)
            if err:
                errors.append(err)
            elif "VmRSS" in st:
                rss.append(st["VmRSS"])
                hwm.append(st["VmHWM"])
        result[mode] = {"ms": spread(times), "rss_kb": spread(rss), "hwm_kb": spread(hwm),
                        "errors": errors[:3], "n_errors": len(errors)}
    if not floor:
        result["size"] = os.path.getsize(binary)
    print(json.dumps(result))


def repeat(args):
    """repeat NAME REPS LOG -- argv... -> one JSON object; one discarded warm-up run first."""
    name, reps, log = args[0], int(args[1]), args[2]
    argv = args[4:]
    times, failures = [], 0
    with open(log, "ab") as out:
        for i in range(reps + 1):
            t0 = time.perf_counter_ns()
            rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            ms = (time.perf_counter_ns() - t0) / 1e6
            if rc != 0:
                failures += 1
            elif i > 0:
                times.append(ms)
    print(json.dumps({"name": name, "ms": spread(times), "failures": failures}))


def fmt_ms(s):
    if not s:
        return "FAILED"
    f = (lambda x: f"{x:.1f}") if s["median"] < 100 else (lambda x: f"{x:.0f}")
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def fmt_mib(s):
    return "-" if not s else f"{s['median'] / 1024:.1f}"


def report(args):
    """report RESULTS.jsonl FACTS.txt -> markdown on stdout."""
    rows = {}
    for line in open(args[0]):
        if line.strip():
            r = json.loads(line)
            rows[r["name"]] = r
    facts = [l.rstrip("\n") for l in open(args[1]) if l.strip()]
    ours, floor = rows["breakglass"], rows["harness floor"]
    out = ["### terraform-provider-breakglass (release build)", ""]
    out += ["- " + f for f in facts]
    out += ["", "| measurement | breakglass | floor | n |", "|---|---:|---:|---:|"]

    def hs(mode, label):
        s = ours[mode]["ms"]
        err = f" [{ours[mode]['n_errors']} err]" if ours[mode]["n_errors"] else ""
        out.append(f"| {label}, ms | {fmt_ms(s)}{err} | {fmt_ms(floor[mode]['ms'])} "
                   f"(echo) | {s['n'] if s else 0} |")

    hs("plain", "exec → handshake, plain")
    hs("mtls", "exec → handshake, AutoMTLS client cert")
    for key, label in (("rss_kb", "VmRSS 1 s after start"), ("hwm_kb", "VmHWM 1 s after start")):
        s = ours["mtls"][key]
        out.append(f"| {label} (cert), MiB | {fmt_mib(s)} | - | {s['n'] if s else 0} |")
    out.append(f"| binary size, MiB | {ours['size'] / 1048576:.1f} | - | - |")
    for name, label, floor_name, floor_label in (
            ("schema", "`terraform providers schema -json`, ms", "schema floor", "no provider"),
            ("plan", "`terraform plan` examples/quickstart vs emulated tenant, ms", "plan floor",
             "empty config")):
        r, f = rows[name], rows[floor_name]
        fail = f" [{r['failures']} failed]" if r["failures"] else ""
        n = r["ms"]["n"] if r["ms"] else 0
        out.append(f"| {label} | {fmt_ms(r['ms'])}{fail} | {fmt_ms(f['ms'])} ({floor_label}) | {n} |")
    extra = rows.get("plan details", {})
    out.append(f"| provider processes started per plan (TF_LOG=debug) | {extra.get('starts', '-')} | - | 1 |")
    out.append(f"| tenant requests per plan (token + Graph, request log) | "
               f"{extra.get('requests_per_plan', '-')} | - | {extra.get('plans', '-')} |")
    print("\n".join(out))
    broken = [r["name"] for r in rows.values()
              if r.get("failures") or r.get("n_errors")
              or any(isinstance(m, dict) and m.get("n_errors") for m in r.values())]
    if broken:
        print(f"\nFAILED measurements: {', '.join(broken)} (see the logs with KEEP_WORK=1)")
        sys.exit(2)


if __name__ == "__main__":
    {"handshake": handshake, "repeat": repeat, "report": report}[sys.argv[1]](sys.argv[2:])
PY
py() { BENCH_MAGIC_COOKIE=$MAGIC_COOKIE "$PYTHON" "$work/bench.py" "$@"; }
results="$work/results.jsonl"
: >"$results"

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), measured: $revision"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average at start $(load)"
  echo "provider binary sha256 $(sha256sum "$provider" | cut -c1-16)…, built $(date -u -r "$provider" '+%H:%M UTC')"
  echo "terraform $("$terraform" version 2>/dev/null | awk 'NR == 1 { print $2 }'), provider $version, knobs HS_RUNS=$HS_RUNS HS_WARMUP=$HS_WARMUP RSS_RUNS=$RSS_RUNS SCHEMA_REPS=$SCHEMA_REPS PLAN_REPS=$PLAN_REPS"
} >"$work/facts.txt"

# ---------------------------------------------------------------------------- handshake and RSS
log "exec -> handshake: harness floor"
py handshake "harness floor" floor "$HS_RUNS" "$HS_WARMUP" 0 "$work/client.pem" >>"$results"
log "exec -> handshake: breakglass ($HS_RUNS runs x 2 modes, then $RSS_RUNS idle runs each for RSS)"
py handshake breakglass "$provider" "$HS_RUNS" "$HS_WARMUP" "$RSS_RUNS" "$work/client.pem" >>"$results"

# -------------------------------------------------------------------------- the emulated tenant
"$work/bin/breakglass-fake-tenant" --listen 127.0.0.1:0 >"$work/tenant.out" 2>"$work/tenant.log" &
tenant_pid=$!
for _ in $(seq 1 100); do
  grep -q '"ready"' "$work/tenant.out" 2>/dev/null && break
  kill -0 "$tenant_pid" 2>/dev/null || die "the emulated tenant exited: $(tail -n 3 "$work/tenant.log")"
  sleep 0.1
done
ready="$(head -n 1 "$work/tenant.out")"
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$ready"; }
url="$(field url)"
[[ -n "$url" ]] || die "the emulated tenant did not report ready"
# The seed's credentials go to the provider through the environment only; they are never printed.
export ARM_TENANT_ID="$(field tenant_id)" ARM_CLIENT_ID="$(field client_id)"
export ARM_CLIENT_SECRET="$(field client_secret)"
export BREAKGLASS_LOGIN_ENDPOINT="$url" BREAKGLASS_GRAPH_ENDPOINT="$url"
export BREAKGLASS_RESOURCE_MANAGER_ENDPOINT="$url"
log "emulated tenant at $url"

# ------------------------------------------------------------- providers schema and quickstart plan
mkdir -p "$work/quickstart" "$work/empty" "$work/modules"
cp -R "$src/examples/quickstart/." "$work/quickstart/"
# The quickstart calls ../modules/breakglass.
cp -R "$src/examples/modules/." "$work/modules/"
# The floor for plan and schema: Terraform on a configuration that needs no provider.
echo 'terraform {}' >"$work/empty/main.tf"
"$terraform" -chdir="$work/quickstart" init -input=false -no-color >"$work/init.log" 2>&1 \
  || die "terraform init of examples/quickstart failed: $(tail -n 5 "$work/init.log")"

log "terraform providers schema -json: $SCHEMA_REPS runs, and the same with no provider"
py repeat "schema floor" "$SCHEMA_REPS" "$work/schema.log" -- "$terraform" -chdir="$work/empty" providers schema -json -no-color >>"$results"
py repeat schema "$SCHEMA_REPS" "$work/schema.log" -- "$terraform" -chdir="$work/quickstart" providers schema -json -no-color >>"$results"

log "terraform plan examples/quickstart: $PLAN_REPS runs, and an empty configuration"
py repeat "plan floor" "$PLAN_REPS" "$work/plan.log" -- "$terraform" -chdir="$work/empty" plan -input=false -no-color >>"$results"
curl_admin() { "$PYTHON" -c 'import sys, urllib.request as u; r = u.Request(sys.argv[1], method=sys.argv[2]); print(u.urlopen(r).read().decode())' "$url/_fake/$1" "$2"; }
curl_admin requests DELETE >/dev/null
py repeat plan "$PLAN_REPS" "$work/plan.log" -- "$terraform" -chdir="$work/quickstart" plan -input=false -no-color >>"$results"
grep -q 'Changes to Outputs' "$work/plan.log" || die "the quickstart plan did not read the tenant: $(tail -n 5 "$work/plan.log")"
# Every plan ran against the tenant (warm-up included): its request log says how much work that was.
requests="$(curl_admin requests GET | "$PYTHON" -c 'import json, sys; v = json.load(sys.stdin); print(len(v["value"]))')"
plans=$((PLAN_REPS + 1))
# One untimed plan with Terraform's debug log, to count the provider processes a plan starts.
TF_LOG=debug TF_LOG_PATH="$work/debug.log" "$terraform" -chdir="$work/quickstart" plan -input=false -no-color >/dev/null 2>&1 || true
starts="$(grep -c 'plugin started' "$work/debug.log" || true)"
rm -f "$work/debug.log"
printf '{"name": "plan details", "starts": %s, "requests_per_plan": "%s", "plans": %s}\n' \
  "${starts:-0}" "$(awk -v r="$requests" -v p="$plans" 'BEGIN { printf "%.1f", r / p }')" "$plans" >>"$results"

kill "$tenant_pid" 2>/dev/null || true
wait "$tenant_pid" 2>/dev/null || true
tenant_pid=""
unset ARM_CLIENT_SECRET ARM_TENANT_ID ARM_CLIENT_ID BREAKGLASS_LOGIN_ENDPOINT \
  BREAKGLASS_GRAPH_ENDPOINT BREAKGLASS_RESOURCE_MANAGER_ENDPOINT

# -------------------------------------------------------------- the whole job (issue 13)
# Each part starts its own emulated tenant (credentials through the environment only).
job() {
  "$PYTHON" "$src/scripts/bench_job.py" "$@" --root "$src" \
    --tenant-bin "$work/bin/breakglass-fake-tenant" --terraform "$terraform" --work "$work/job"
}
log "requests per command: quickstart apply, no-change plan, destroy, against the minimum"
job requests >>"$results" || die "the request-count run failed (logs in $work/job with KEEP_WORK=1)"
log "quickstart apply with ${LATENCY_MS} ms per request: $JOB_REPS runs, Terraform alone, the original procedure"
job latency --reps "$JOB_REPS" --latency-ms "$LATENCY_MS" >>"$results" \
  || die "the latency run failed (logs in $work/job with KEEP_WORK=1)"
if [[ "${BENCH_THROTTLED:-1}" != 0 ]]; then
  log "throttled tenant: 2 accounts x 195 policies at the documented 1 request/s (about 4 minutes)"
  job throttled >>"$results" || die "the throttled run failed (logs in $work/job with KEEP_WORK=1)"
fi
echo "load average after our measurements: $(load)" >>"$work/facts.txt"

report="$work/report.md"
status=0
py report "$results" "$work/facts.txt" >"$report" || status=$?
"$PYTHON" "$src/scripts/bench_job.py" report --results "$results" >>"$report" || status=$?

# ------------------------------------------------------------------------------- peers, same run
if [[ -n "$peers_sh" ]]; then
  log "peers: $peers_sh with our binary as an extra provider"
  BENCH_EXTRA_PROVIDERS="$provider" OUT_MD="$work/peers.md" TERRAFORM="$terraform" \
    bash "$peers_sh" >"$work/peers.out" || die "the peer script failed (its log is above)"
  {
    echo
    echo "The Go provider peers, measured in this same run by $(basename "$peers_sh"); \`breakglass (extra)\` there is the binary measured above."
    echo
    # Its headings move down two levels so they nest under ours.
    sed -e 's/^### /##### /' -e 's/^# /### /' "$work/peers.md"
  } >>"$report"
else
  echo >>"$report"
  echo "(no peer script: set PEERS_SH to compare with Go providers in the same run)" >>"$report"
fi

echo
cat "$report"
[[ -z "${OUT_MD:-}" ]] || cp "$report" "$OUT_MD"
exit "$status"
