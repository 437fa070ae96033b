#!/usr/bin/env bash
# Builds the Lambda binaries the constructs ship:
# (arm64, `cargo lambda build --release --arm64`, zig as the linker) and copies each into the
# folder its construct loads as an asset, printing raw and zipped sizes. Host builds for the local
# cloud come from the ordinary `cargo build` of the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "build-lambdas: cargo-lambda not found; run 'bash .ci/setup' first (it installs it into .venv)" >&2
  exit 1
fi

bins=(bootstrap example-consumer)
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done

cargo lambda build --release --arm64 --locked "${bin_args[@]}"

for b in "${bins[@]}"; do
  case "$b" in
    bootstrap) asset="cdk/assets/bootstrap" ;;
    *) asset="example-stack/assets/$b" ;;
  esac
  mkdir -p "$asset"
  cp "$target_dir/lambda/$b/bootstrap" "$asset/bootstrap"
  python3 - "$b" "$asset/bootstrap" <<'PY'
import io, os, sys, zipfile
name, path = sys.argv[1], sys.argv[2]
raw = os.path.getsize(path)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(path, "bootstrap")
zipped = len(buf.getvalue())
print(f"build-lambdas: {name:<18} arm64 {raw} bytes ({raw/2**20:.2f} MiB), zipped {zipped} bytes ({zipped/2**20:.2f} MiB) -> {path}")
PY
done
