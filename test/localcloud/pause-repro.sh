#!/usr/bin/env bash
# test/localcloud/pause-repro.sh PAUSE_S TEST [BASETEMP]: runs the pytest module TEST (e.g.
# test/e2e/test_alias.py) and, once its deploy has made the local cloud's log folder, stops the
# whole test process tree with SIGSTOP for PAUSE_S seconds, as a CI machine paused for a snapshot
# stops everything (stalls.py). The deadlines count running time, so the module still passes.
# Stop 32's CI failed this way; on the harness before stalls.py this reproduced it with 120 s.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
pause=$1; test=$2; base=${3:-$(mktemp -d)/run}
rm -rf "$base"; mkdir -p "$(dirname "$base")"
.venv/bin/python -m pytest -q -p no:cacheprovider --basetemp="$base" "$test" > "$base.log" 2>&1 &
pid=$!
until ls -d "$base"/*/logs > /dev/null 2>&1; do
  kill -0 "$pid" 2> /dev/null || { echo "pause-repro: pytest ended before the deploy"; tail -20 "$base.log"; exit 1; }
  sleep 0.5
done
sleep 3
echo "pause-repro: stopping pytest ($pid) and its processes at $(date +%T) for ${pause} s"
(cd test && ../.venv/bin/python -m localcloud.stalls "$pid" "$pause" 0)
echo "pause-repro: running again at $(date +%T)"
wait "$pid"
status=$?
tail -3 "$base.log"
echo "pause-repro: pytest exited with $status (log: $base.log)"
exit "$status"
