#!/usr/bin/env bash
# bench-preprocess: decode + face crop + resize throughput of package preprocess, a cold
# pass (fresh empty cache) then a cached pass, and the face-found rate, over faces4 (all
# 988 images), then OpenCV's Haar cascade in Python over the same files (the peer: found rate
# and speed); first over another class-folder set when given as $1, e.g.
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
# The Python peer on the same files: OpenCV's Haar cascade (found rate and speed).
PY=${EMOTIONS_PYTHON:-.venv/bin/python}
if haar=$("$PY" experiments/peers/haar_faces.py --data data/faces4 | tail -1); then
  echo "OpenCV Haar peer: $haar" >&2
  figures=$("$PY" -c 'import json,sys; g=json.loads(sys.argv[1]); h=json.loads(sys.argv[2])
g.update({"haar_found_rate": h["found_rate"], "haar_img_per_s": h["img_per_s"], "haar_cpu_ms_per_img": h["cpu_ms_per_img"],
          "cold_over_haar_speed": round(g["cold_img_per_s"] / h["img_per_s"], 1)})
print(json.dumps(g, sort_keys=True))' "$figures" "$haar")
else
  echo "bench: the OpenCV Haar peer failed (run make setup)" >&2
fi
BIN=${BIN:-bin/emotions}
if [[ -x $BIN ]]; then
  "$BIN" experiment record-benchmark --name bench-preprocess --command "make bench-preprocess" "$figures" >&2 \
    || echo "bench: could not record the figures in RESULTS.md" >&2
fi
echo "$figures"
