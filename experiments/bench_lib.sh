# Shared by the bench_*.sh scripts (sourced, not run). Benchmarks print figures; they are
# never timed tests. Each alternates the Go side and its Python peer in one invocation
# (Go, Python, Go, Python, ...) so drift in machine load hits both, and takes medians.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BIN:-bin/emotions}
PY=${PY:-.venv/bin/python}
BACKBONE=${BENCH_BACKBONE:-inception_resnet_v2}
ROUNDS=${BENCH_ROUNDS:-2}
WORK=${BENCH_DIR:-/tmp/emotions-bench/$BACKBONE}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Outside make (which exports the cgo flags), take them from the setup's env file.
if [[ -z "${CGO_CFLAGS:-}" && -f .tflib/env.sh ]]; then source .tflib/env.sh; fi
mkdir -p "$WORK"
[[ -x $BIN ]] || { echo "bench: $BIN missing: run make build" >&2; exit 1; }

log() { echo "bench: $*" >&2; }

# bench_model: export the benchmark model once per backbone (IRv2 takes ~95 s) and reuse it.
bench_model() {
  if [[ ! -f $WORK/model/emotions.json ]]; then
    log "exporting $BACKBONE to $WORK/model"
    "$BIN" new-model --backbone "$BACKBONE" --weights none --seed 0 --out "$WORK/model" >&2
  fi
  echo "$WORK/model"
}

# bench_npz DIR: the tensors `emotions preprocess` feeds for DIR, written once.
bench_npz() {
  local out=$WORK/$(basename "$1").npz
  [[ -f $out ]] || "$BIN" preprocess --data "$1" --model "$WORK/model" --out "$out" >&2
  echo "$out"
}

# need_opencv: the Python peers' OpenCV (Haar cascades), installed into the venv on first use.
need_opencv() {
  "$PY" -c 'import cv2; cv2.CascadeClassifier' 2>/dev/null ||
    "$PY" -m pip install --quiet --disable-pip-version-check "opencv-python-headless<5" >&2  # 5.x dropped the Haar cascades
}

# json EXPR VAR=FILE...: evaluate a Python expression over JSON files (loaded as variables).
json() {
  local expr=$1; shift
  "$PY" - "$expr" "$@" <<'PYEOF'
import json, statistics, sys
env = {"median": statistics.median, "json": json}
for a in sys.argv[2:]:
    k, v = a.split("=", 1)
    env[k] = [json.loads(l) for l in open(v) if l.strip()] if v.endswith(".jsonl") else json.load(open(v))
print(eval(sys.argv[1], env))
PYEOF
}

# go_rate RUN: images/s of an `emotions train` run after epoch 1 (graph optimisation), from
# history.json: "images_per_second" over the training steps only (validation and checkpointing
# are not in an epoch's "seconds", as Keras' fit epochs without validation data), and
# "loop_images_per_second" over whole epochs ("wall_seconds": steps, validation, callbacks and
# the time the loop waited for checkpoints), with the images per epoch (n // 64 full batches,
# as the seed's fit).
go_rate() {
  json '(lambda h, per: json.dumps({"images_per_second": per * (len(h) - 1) / sum(e["seconds"] for e in h[1:]) if len(h) > 1 else per / h[0]["seconds"],
    "loop_images_per_second": per * (len(h) - 1) / sum(e["wall_seconds"] for e in h[1:]) if len(h) > 1 else per / h[0]["wall_seconds"],
    "epoch_seconds": [round(e["seconds"], 3) for e in h], "epoch_wall_seconds": [round(e["wall_seconds"], 3) for e in h]}))(H, S["data"]["train_images"] // S["settings"]["batch_size"] * S["settings"]["batch_size"])' \
    H="$1/history.json" S="$1/summary.json"
}

# record NAME COMMAND JSON: add the figures to RESULTS.md's Benchmarks section, then print
# the JSON as the script's last line.
record() {
  "$BIN" experiment record-benchmark --name "$1" --command "$2" "$3" >&2 || log "could not record the figures in RESULTS.md"
  echo "$3"
}
