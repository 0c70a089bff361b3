#!/usr/bin/env bash
# Installs the Microsoft Python SDKs pinned in tests/sdk/requirements.txt into
# .tools/python-sdk/site (pip --target: nothing outside the project's .tools/ changes), for the
# official-SDK test in tests/it/sdk_python.rs.
#
# Idempotent: .tools/python-sdk/installed records the interpreter and a hash of the
# requirements; when both still match, nothing is downloaded. On any failure it exits non-zero
# with the reason, so `make test` fails loudly instead of skipping the test.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/tests/sdk/requirements.txt"
dir="$root/.tools/python-sdk"
stamp="$dir/installed"

python="$(command -v python3 || true)"
if [[ -z "$python" ]]; then
  echo "python-sdk: need python3 (with pip) to install the SDKs for the official-SDK test" >&2
  exit 1
fi
# The interpreter itself (not a shim), so the test runs the one the packages were built for.
python="$("$python" -c 'import sys; print(sys.executable)')"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
want="python=$python
version=$version
requirements=$hash"

if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]; then
  echo "python-sdk: Microsoft SDKs for Python $version already in $dir/site"
  exit 0
fi

if ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "python-sdk: $python has no pip (python3-pip); cannot install the SDKs" >&2
  exit 1
fi
echo "python-sdk: installing Microsoft SDKs (tests/sdk/requirements.txt) for Python $version into $dir/site"
rm -rf "$dir"
mkdir -p "$dir"
if ! "$python" -m pip install --quiet --disable-pip-version-check --no-input \
    --root-user-action=ignore --only-binary :all: --target "$dir/site" -r "$requirements"; then
  echo "python-sdk: pip could not install tests/sdk/requirements.txt from PyPI" >&2
  rm -rf "$dir"
  exit 1
fi
if ! PYTHONPATH="$dir/site" "$python" -c 'import msgraph, azure.identity, azure.mgmt.monitor, azure.mgmt.loganalytics, azure.mgmt.resource, azure.mgmt.resource.subscriptions'; then
  echo "python-sdk: the installed SDKs do not import" >&2
  rm -rf "$dir"
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
echo "python-sdk: installed"
