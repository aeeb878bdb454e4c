#!/usr/bin/env bash
# make test N times in a row on a fresh clone of this checkout's HEAD, with two CPU-burning
# processes beside it, each run with an empty TMPDIR of its own, listed afterwards (the suite
# must leave nothing there). What the README's "The test suite under load" table records.
#   scripts/test_under_load.sh [RUNS] [DIR]      (default 5 runs, in /tmp/emotions-under-load)
# One line per run: exit status, wall seconds, what the run left in its TMPDIR.
set -uo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
root=${2:-/tmp/emotions-under-load}/$(date -u +%Y%m%dT%H%M%S)
commit=$(git -C "$here" rev-parse HEAD)
mkdir -p "$root"
git clone -q "$here" "$root/clone" && git -C "$root/clone" checkout -q "$commit" || exit 1
burn() { while :; do :; done; }
burn & b1=$!
burn & b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
echo "commit $commit, $(nproc) cores, 2 burners, $(date -u +%FT%TZ)" | tee "$root/summary.txt"
failed=0
for i in $(seq "$runs"); do
  tmp=$root/tmp-$i
  mkdir -p "$tmp"
  start=$(date +%s)
  (cd "$root/clone" && TMPDIR=$tmp CI=true bash .ci/run) >"$root/run-$i.log" 2>&1
  rc=$?
  ((rc == 0)) || failed=$((failed + 1))
  echo "run $i: exit $rc, $(($(date +%s) - start)) s, left in TMPDIR: [$(ls -A "$tmp" | tr '\n' ' ')]" | tee -a "$root/summary.txt"
done
echo "$((runs - failed)) of $runs passed; logs in $root" | tee -a "$root/summary.txt"
exit $((failed > 0))
