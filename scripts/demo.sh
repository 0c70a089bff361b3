#!/usr/bin/env bash
# `make demo`: applies examples/quickstart with the provider built from this tree against the emulated
# tenant (fake-tenant), shows the outputs and proves a second plan is empty. The tenant lives in memory and
# goes away with the script.
# Nothing here talks to Azure; the tenant's credentials are the emulator's seed values.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

cargo build --workspace --bins --quiet
terraform="$(scripts/ensure-terraform.sh | sed -n 's/^terraform: using \(.*\) (version .*)$/\1/p' | tail -n 1)"
[[ -x "$terraform" ]] || { echo "demo: no usable terraform" >&2; exit 1; }

work="$(mktemp -d)"
tenant_pid=""
cleanup() {
  [[ -n "$tenant_pid" ]] && kill "$tenant_pid" 2>/dev/null && wait "$tenant_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A private copy of the provider and a CLI config pointing Terraform at it.
mkdir -p "$work/provider" "$work/config"
cp "$target/debug/terraform-provider-breakglass" "$work/provider/"
cat > "$work/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/breakglass/breakglass" = "$work/provider"
  }
  direct {}
}
RC
cp -R examples/quickstart/. "$work/config/"
# The quickstart calls the module as ../modules/breakglass, as it does in this repository.
cp -R examples/modules "$work/modules"
tf_version="$("$terraform" version -json | sed -n 's/.*"terraform_version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n 1)"
tf_minor="${tf_version#*.}"; tf_minor="${tf_minor%%.*}"
if [[ "${tf_version%%.*}" == 1 && "$tf_minor" -lt 5 ]]; then
  rm "$work/config/posture.tf"
  echo "demo: terraform $tf_version has no check blocks (1.5+): running without posture.tf"
fi

# The emulated tenant prints one JSON "ready" line with its URL and seed credentials.
"$target/debug/breakglass-fake-tenant" --listen 127.0.0.1:0 >"$work/tenant.out" 2>"$work/tenant.log" &
tenant_pid=$!
for _ in $(seq 1 100); do
  grep -q '"ready"' "$work/tenant.out" 2>/dev/null && break
  kill -0 "$tenant_pid" 2>/dev/null || { cat "$work/tenant.log" >&2; exit 1; }
  sleep 0.1
done
ready="$(head -n 1 "$work/tenant.out")"
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$ready"; }
url="$(field url)"
[[ -n "$url" ]] || { echo "demo: the emulated tenant did not report ready" >&2; exit 1; }
echo "demo: emulated tenant at $url"

export TF_CLI_CONFIG_FILE="$work/terraform.rc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export ARM_TENANT_ID="$(field tenant_id)" ARM_CLIENT_ID="$(field client_id)"
export ARM_CLIENT_SECRET="$(field client_secret)"
export BREAKGLASS_LOGIN_ENDPOINT="$url" BREAKGLASS_GRAPH_ENDPOINT="$url"
export BREAKGLASS_RESOURCE_MANAGER_ENDPOINT="$url"

tf() { "$terraform" -chdir="$work/config" "$@"; }
admin() { python3 "$root/scripts/demo-admin.py" "$@"; }

# What a plan would change in managed objects, one "address: actions" line each (empty when
# nothing; a check block's data source is read on every plan, which is not a change).
plan_changes() {
  tf plan -input=false -no-color -out="$work/demo.tfplan" >"$work/plan.out" 2>&1 \
    || { cat "$work/plan.out" >&2; echo "demo: plan failed" >&2; exit 1; }
  tf show -json "$work/demo.tfplan" 2>/dev/null | admin plan-changes
}

plan_empty() {
  local changes
  changes="$(plan_changes)"
  if [[ -n "$changes" ]]; then
    cat "$work/plan.out"; echo "demo: $1: the plan is not empty: $changes" >&2; exit 1
  fi
  echo "demo: $1: the plan is empty"
}

echo "demo: step 1: apply the quickstart (module examples/modules/breakglass)"
tf get -no-color >/dev/null
tf apply -auto-approve -input=false -no-color
mapfile -t upns < <(tf output -json accounts | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)))')
echo
echo "demo: what the tenant looks like now"
admin summary "${upns[@]}"
echo
echo "demo: the sign-in alert's query"
tf output -raw alert_query
echo
echo
plan_empty "after apply"

echo
echo "demo: step 2: a month later, another administrator adds a conditional-access policy"
admin new-policy "Require MFA for all users (added later)"
echo "demo: terraform plan notices it and would add the exclusion (nothing else in it changes):"
changes="$(plan_changes)"
if [[ "$changes" != *breakglass_ca_exclusion.this:\ update* ]]; then
  cat "$work/plan.out"; echo "demo: expected the plan to add the exclusion, not: $changes" >&2; exit 1
fi
sed -n '/# module.breakglass.breakglass_ca_exclusion.this/,/^    }/p' "$work/plan.out"
grep '^Plan:' "$work/plan.out"
if grep -q 'Check block assertion failed' "$work/plan.out"; then
  echo "demo: ...and the posture check warns about it:"
  grep -A 12 'Check block assertion failed' "$work/plan.out" | grep -v '^$' | head -n 10
fi
tf apply -auto-approve -input=false -no-color >/dev/null
echo "demo: applied"
admin summary "${upns[@]}"
echo
plan_empty "after the second apply"
echo
echo "demo: done. The passwords never left Terraform's state: terraform output -json passwords"
