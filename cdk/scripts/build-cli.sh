#!/usr/bin/env bash
# Builds `breaker`, the operator CLI, for the two Linux architectures the npm package ships it for
# (`npx sqs-circuit-breaker <command>` runs the one that fits: cdk/bin/sqs-circuit-breaker.js), with
# `cargo lambda build --release` (zig as the linker: glibc-portable binaries, the same
# cross-compilation as the Lambda binaries), into cdk/assets/cli/<arch>/breaker. Not part of the
# first run (`.ci/setup` builds the Lambdas only, the demo needs no CLI): `npm run build:cli`;
# `npm test` runs it in the background beside the local-cloud suite (test/beside-cli-build.sh);
# prepack refuses to pack without both binaries. Its own target folder (<target>/cli): it may run
# beside a test build without waiting on that build's lock or holding it (it shares no compiled
# dependencies with the Lambdas anyway: `--package breaker-cli` unifies other features).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$root/target}/cli"
export CARGO_TARGET_DIR="$target_dir"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "build-cli: cargo-lambda not found; run 'bash .ci/setup' first (it installs it into .venv)" >&2
  exit 1
fi

# build ARCH FLAG: one architecture (cargo lambda leaves the binary at lambda/breaker/bootstrap
# whatever the target, so each is copied before the next build).
build() {
  local arch=$1 flag=$2 dir="cdk/assets/cli/$1"
  cargo lambda build --release "$flag" --locked --package breaker-cli --bin breaker
  mkdir -p "$dir"
  # copied beside, then renamed into place: a test may be running the previous binary
  cp "$target_dir/lambda/breaker/bootstrap" "$dir/breaker.new"
  chmod 755 "$dir/breaker.new"
  mv -f "$dir/breaker.new" "$dir/breaker"
  echo "build-cli: breaker $arch $(stat -c %s "$dir/breaker") bytes -> $dir/breaker"
}

build x86_64 --x86-64
build arm64 --arm64
