#!/usr/bin/env bash
# test/beside-cli-build.sh COMMAND...: runs COMMAND while the operator CLI's release binaries build
# in the background at the lowest CPU priority (`nice -n 19`), then waits for the build.
#
# `npm test` runs the local-cloud suite this way: its tests mostly wait on the breaker's timers
# (two cores 60-80 % idle in a CI run), so the CLI build (about 16 CPU-minutes for both
# architectures, 11.5 minutes alone on 2 cores) takes the idle time instead of adding to the run;
# at nice 19 it yields the CPU whenever the tests want it. The build uses a target folder of its
# own (cdk/scripts/build-cli.sh), so it never holds the lock of a test build. The exit status is
# COMMAND's if it failed, else the build's; the build's output is shown if it failed.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="$(mktemp)"
started=$(date +%s)
nice -n 19 bash "$root/cdk/scripts/build-cli.sh" > "$log" 2>&1 &
build=$!
"$@"
status=$?
command_end=$(date +%s)
if ! wait "$build"; then
  sed 's/^/   /' "$log" >&2
  echo "beside-cli-build: the CLI build failed (its output above)" >&2
  [ "$status" -ne 0 ] || status=1
else
  grep '^build-cli:' "$log"
  echo "beside-cli-build: '$*' took $(( command_end - started ))s; the CLI build beside it $(( $(date +%s) - started ))s (waited for $(( $(date +%s) - command_end ))s)"
fi
rm -f "$log"
exit "$status"
