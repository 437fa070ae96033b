#!/usr/bin/env bash
# Builds the Lambda binaries the constructs ship:
# (arm64, `cargo lambda build --release --arm64`, zig as the linker) and copies each into the
# folder its construct loads as an asset, printing raw and zipped sizes. The consumer-side
# telemetry extension (`sqs-circuit-breaker-telemetry`, a layer) is built for arm64 in the same
# invocation (shared dependencies compile once) and again for x86_64 (extension binaries are
# architecture-specific and the consumer may be either), into
# cdk/assets/extension/<arch>/extensions/ (a layer zip puts extensions/<name> at
# /opt/extensions/<name>). The local cloud (demo, e2e tests) runs these very arm64 binaries,
# under qemu-user on an x86_64 host; it needs no host build of them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "build-lambdas: cargo-lambda not found; run 'bash .ci/setup' first (it installs it into .venv)" >&2
  exit 1
fi

extension=sqs-circuit-breaker-telemetry
bins=(bootstrap example-consumer "$extension")
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done

# size NAME ARCH PATH ZIP_ENTRY: prints raw and zipped sizes of one asset.
size() {
  python3 - "$@" <<'PY'
import io, os, sys, zipfile
name, arch, path, entry = sys.argv[1:5]
raw = os.path.getsize(path)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(path, entry)
zipped = len(buf.getvalue())
print(f"build-lambdas: {name:<30} {arch:<6} {raw} bytes ({raw/2**20:.2f} MiB), zipped {zipped} bytes ({zipped/2**20:.2f} MiB) -> {path}")
PY
}

# copy_extension ARCH: the extension as its layer asset (cargo lambda leaves every binary at
# lambda/<bin>/bootstrap, so this runs right after each architecture's build).
copy_extension() {
  local dir="cdk/assets/extension/$1/extensions"
  mkdir -p "$dir"
  cp "$target_dir/lambda/$extension/bootstrap" "$dir/$extension"
  chmod 755 "$dir/$extension"
  size "$extension" "$1" "$dir/$extension" "extensions/$extension"
}

cargo lambda build --release --arm64 --locked "${bin_args[@]}"

for b in "${bins[@]}"; do
  case "$b" in
    "$extension") copy_extension arm64; continue ;;
    bootstrap) asset="cdk/assets/bootstrap" ;;
    *) asset="example-stack/assets/$b" ;;
  esac
  mkdir -p "$asset"
  cp "$target_dir/lambda/$b/bootstrap" "$asset/bootstrap"
  size "$b" arm64 "$asset/bootstrap" bootstrap
done

# --package: only the extension's own features (a workspace-wide build would unify in the
# handlers' features, e.g. hyper's http2, and compile more for nothing).
cargo lambda build --release --x86-64 --locked --package breaker-extension --bin "$extension"
copy_extension x86_64
