#!/usr/bin/env bash
# bench-preprocess: decode + face crop + resize throughput of package preprocess, a cold
# pass (fresh empty cache) then a cached pass, and the face-found rate, over faces4 (all
# 988 images); first over another class-folder set when given as $1, e.g.
#   experiments/bench_preprocess.sh ../shared/datasets/faces-pretrain
# Wall-clock figures suffer from other work on the machine: the load average and the CPU
# time per image are printed beside them. The last line is one JSON object (faces4).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/benchpreprocess
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./experiments/benchpreprocess
if [[ -n ${1:-} ]]; then
  "$bin" -data "$1" | sed '$d'
fi
figures=$("$bin" -data data/faces4 | tee /dev/stderr | tail -1)
BIN=${BIN:-bin/emotions}
if [[ -x $BIN ]]; then
  "$BIN" experiment record-benchmark --name bench-preprocess --command "make bench-preprocess" "$figures" >&2 \
    || echo "bench: could not record the figures in RESULTS.md" >&2
fi
echo "$figures"
