#!/usr/bin/env python3
"""Reproducible release of terraform-provider-breakglass for the host platform.

    release.py build   --target-dir DIR              the release binary (`make install` uses it)
    release.py package --target-dir DIR --dist DIR   build, then the registry files (`make release`)

`package` writes, in the layout the Terraform Registry ingests and goreleaser produces
(developer.hashicorp.com "Publish providers" -> release layout; "Publishing to the Registry" of
the plugin framework docs for the manifest):

    terraform-provider-breakglass_<version>_<os>_<arch>.zip   holding only
                                                              terraform-provider-breakglass_v<version>
    terraform-provider-breakglass_<version>_manifest.json     {"version": 1, "metadata": {"protocol_versions": ["6.0"]}}
    terraform-provider-breakglass_<version>_SHA256SUMS        `sha256sum` lines over the zip(s) and the manifest

Two builds from the same sources with the same toolchain give the same bytes:
- `cargo build --release --locked` into a target dir of its own, so the flags below never make
  the normal builds (target/debug, target/release) recompile;
- every absolute path rustc could write into the binary (panic locations, generated code) is
  remapped: the cargo home (registry sources) to /cargo and the target dir (build-script output
  such as the generated gRPC code) to /target. The source tree itself needs no remap: cargo
  hands rustc the workspace's own files as paths relative to the workspace root. Passing the
  source dir in RUSTFLAGS would also make every dependency rebuild whenever the checkout moves.
  The e2e test checks the binary for the source, target and cargo-home paths;
- the caller's RUSTFLAGS, wrappers, profile overrides and incremental mode are dropped;
- the zip has fixed entry metadata: the time is SOURCE_DATE_EPOCH (default: the commit time of
  HEAD, reproducible-builds.org's convention), mode 0755, Unix "made by", fixed deflate level.
  Its compressed bytes also depend on the zlib Python links; the binary inside does not.
  SOURCE_DATE_EPOCH is also passed to the build, so a C compiler (ring's) that meets __DATE__
  uses it; the cc crate watches it, so ring and its dependents recompile once per new commit.

Zips for other platforms that are already in --dist (built elsewhere with the same command and
copied in) are listed in SHA256SUMS too, which is how a multi-platform release is assembled.
Standard library only.
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

NAME = "terraform-provider-breakglass"
ROOT = Path(__file__).resolve().parent.parent
MANIFEST = '{"version": 1, "metadata": {"protocol_versions": ["6.0"]}}\n'

# Rust target triple parts -> Go's GOOS/GOARCH, which Terraform's platform names use.
OS_NAMES = {"linux": "linux", "darwin": "darwin", "windows": "windows", "freebsd": "freebsd"}
ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7": "arm"}

# Environment that would change what rustc produces. CARGO_ENCODED_RUSTFLAGS, set below, already
# outranks every other source of rustflags; the rest goes so the build is the plain one.
DROPPED = {
    "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "CARGO_BUILD_INCREMENTAL", "RUSTC_BOOTSTRAP",
    # What cargo sets for the processes it runs (a test calling `make release`): build scripts
    # such as ring's watch CARGO_MANIFEST_DIR in the environment cargo starts with, so inheriting
    # them would rebuild half the dependencies whenever the caller changes.
    "CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_MANIFEST_LINKS", "CARGO_CRATE_NAME",
    "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR",
}
INHERITED_PREFIXES = ("CARGO_PROFILE_", "CARGO_PKG_", "CARGO_BIN_", "CARGO_CFG_", "CARGO_FEATURE_")


def die(message):
    sys.exit(f"release.py: {message}")


def package_version():
    """`version` of the [package] table in Cargo.toml (the Makefile reads the same line)."""
    text = (ROOT / "Cargo.toml").read_text(encoding="utf-8")
    table = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = table and re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
    if not found:
        die("no version in the [package] table of Cargo.toml")
    return found.group(1)


def cargo():
    return os.environ.get("CARGO") or "cargo"


def host_platform():
    """(os, arch) of rustc's host triple, the platform `cargo build` without --target builds for."""
    rustc = os.environ.get("RUSTC") or "rustc"
    out = subprocess.run([rustc, "-vV"], check=True, capture_output=True, text=True).stdout
    triple = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                   if line.startswith("host:")), "")
    parts = triple.split("-")
    arch = ARCH_NAMES.get(parts[0])
    os_name = next((OS_NAMES[p] for p in parts[1:] if p in OS_NAMES), None)
    if not arch or not os_name:
        die(f"no Terraform platform name for rustc host {triple!r}")
    return os_name, arch


def source_date_epoch(required=True):
    """SOURCE_DATE_EPOCH, else the commit time of HEAD; None if neither and not required."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        git = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"],
                             capture_output=True, text=True)
        value = git.stdout.strip()
        if git.returncode != 0 or not value:
            if not required:
                return None
            die("not a git checkout: set SOURCE_DATE_EPOCH (seconds) to the commit time")
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True)
        if dirty.stdout.strip():
            print("release.py: note: the working tree has uncommitted changes; this is not a "
                  "build of HEAD", file=sys.stderr)
    if not value.isdigit():
        die(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds")
    return int(value)


def cargo_home():
    home = os.environ.get("CARGO_HOME") or os.path.join(os.path.expanduser("~"), ".cargo")
    return os.path.abspath(home)


def build(target_dir, epoch):
    """The reproducible release build; returns the binary's path. `epoch` (if known) is passed
    on as SOURCE_DATE_EPOCH, the convention for tools that would otherwise stamp the time."""
    target_dir = os.path.abspath(target_dir)
    remaps = {cargo_home(): "/cargo", target_dir: "/target"}
    # Symlinked homes: rustc may see either spelling. Later remaps win, so the target dir (which
    # may lie below the cargo home) comes last.
    for path, to in list(remaps.items()):
        remaps.setdefault(os.path.realpath(path), to)
    ordered = sorted(remaps.items(), key=lambda kv: kv[1] == "/target")
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED and not k.startswith(INHERITED_PREFIXES)
           and not (k.startswith("CARGO_TARGET_") and k.endswith("_RUSTFLAGS"))}
    env["CARGO_ENCODED_RUSTFLAGS"] = "\x1f".join(
        f"--remap-path-prefix={path}={to}" for path, to in ordered)
    env["CARGO_INCREMENTAL"] = "0"
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    command = [cargo(), "build", "--release", "--locked", "--bin", NAME,
               "--manifest-path", str(ROOT / "Cargo.toml"), "--target-dir", target_dir]
    print("release.py: " + " ".join(command), file=sys.stderr)
    if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
        die("cargo build failed")
    suffix = ".exe" if host_platform()[0] == "windows" else ""
    binary = Path(target_dir) / "release" / (NAME + suffix)
    if not binary.is_file():
        die(f"cargo reported success but {binary} is missing")
    return binary


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path, data):
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_zip(path, entry_name, data, epoch):
    # DOS timestamps cannot say anything before 1980 (and count in 2-second steps).
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    info = zipfile.ZipInfo(entry_name, date_time=stamp)
    info.create_system = 3  # Unix, so the mode below is read
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(partial, path)


def package(target_dir, dist):
    epoch = source_date_epoch()
    binary = build(target_dir, epoch)
    version = package_version()
    os_name, arch = host_platform()
    dist = Path(dist).resolve()
    dist.mkdir(parents=True, exist_ok=True)

    entry = f"{NAME}_v{version}" + (".exe" if os_name == "windows" else "")
    archive = dist / f"{NAME}_{version}_{os_name}_{arch}.zip"
    write_zip(archive, entry, binary.read_bytes(), epoch)

    manifest = dist / f"{NAME}_{version}_manifest.json"
    write_atomically(manifest, MANIFEST.encode())

    summed = sorted(p for p in dist.glob(f"{NAME}_{version}_*_*.zip")) + [manifest]
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(summed, key=lambda p: p.name))
    sums_file = dist / f"{NAME}_{version}_SHA256SUMS"
    write_atomically(sums_file, sums.encode())

    print(f"release.py: {dist}/ (SOURCE_DATE_EPOCH={epoch})", file=sys.stderr)
    sys.stderr.write(sums)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "package"):
        sub = commands.add_parser(name)
        sub.add_argument("--target-dir", required=True)
        if name == "package":
            sub.add_argument("--dist", required=True)
    args = parser.parse_args()
    if args.command == "build":
        print(build(args.target_dir, source_date_epoch(required=False)))
    else:
        package(args.target_dir, args.dist)


if __name__ == "__main__":
    main()
