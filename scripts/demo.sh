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
tf apply -auto-approve -input=false -no-color
echo
echo "demo: outputs"
tf output -no-color
echo
echo "demo: planning again (must be empty)"
set +e
tf plan -detailed-exitcode -input=false -no-color
code=$?
set -e
case "$code" in
  0) echo "demo: a second plan is empty" ;;
  2) echo "demo: a second plan after apply is not empty" >&2; exit 1 ;;
  *) echo "demo: plan failed" >&2; exit 1 ;;
esac
