#!/usr/bin/env bash
# make gpu-check: what this project claims on NVIDIA GPUs, proven in minutes on a machine that
# has one or more, with nothing but the README's set-up (the GPU wheel, which this installs).
# Each step prints one JSON line on stdout ({"check": NAME, "ok": true|false, ...}) and adds it
# to experiments/RESULTS.md; the last line is the report of all steps. Without a GPU it says so
# and exits 2 at once, before installing or building anything.
#
#   make gpu-check                         every step (~8 minutes on one GPU)
#   scripts/gpu_check.sh --steps info,tiny some of them
#   scripts/gpu_check.sh --cpu-plumbing    the steps that need no GPU (info, tiny) run on the CPU,
#                                          to test this script on a machine without one; its lines
#                                          say "device": "cpu" and nothing is recorded
#
# Steps: info (what TensorFlow sees), tiny (the tiny model, 2 epochs on one GPU), replicas
# (the tiny model, 2 epochs with every GPU as a replica: new-model and train --replicas at
# their defaults; its line says the replica count and the train signature), irv2 (the
# seed's InceptionResNetV2 80x80, 1 epoch in float32 and 1 under mixed_float16), bench
# (bench-train on the GPU: Go vs Keras fit vs the raw train step, IRv2, images/s).
set -uo pipefail
cd "$(dirname "$0")/.."
ALL_STEPS=info,tiny,replicas,irv2,bench
steps=$ALL_STEPS
work=${GPU_CHECK_DIR:-/tmp/emotions-gpu-check}
plumbing=0
VENV=${VENV:-.venv}
GPU_WHEEL='tensorflow[and-cuda]==2.18.1'

usage() {
  echo "usage: scripts/gpu_check.sh [--steps LIST] [--work DIR] [--cpu-plumbing]   (steps: $ALL_STEPS)" >&2
  exit 2
}
while (($#)); do
  case $1 in
    --steps) (($# >= 2)) || usage; steps=$2; shift 2 ;;
    --work) (($# >= 2)) || usage; work=$2; shift 2 ;;
    --cpu-plumbing) plumbing=1; shift ;;
    -h | --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; usage ;;
  esac
done
for s in ${steps//,/ }; do
  [[ ,$ALL_STEPS, == *,$s,* ]] || { echo "gpu-check: unknown step $s (steps: $ALL_STEPS)" >&2; exit 2; }
done
want() { [[ ,$steps, == *,$1,* ]]; }

# line JSON: print one result line and keep it for the report.
lines=()
line() {
  echo "$1"
  lines+=("$1")
}
# quote TEXT: TEXT as a JSON string (no Python needed: fail runs before anything is set up).
quote() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/ }
  printf '"%s"' "${s//[$'\001'-$'\037']/ }"
}
# fail REASON: the check cannot run here: say why, as a line too, and exit 2.
fail() {
  echo "gpu-check: $1" >&2
  printf '{"check": "preflight", "ok": false, "error": %s}\n' "$(quote "$1")"
  exit 2
}

device=gpu
if ((plumbing)); then
  device=cpu
  want replicas || want irv2 || want bench && fail "--cpu-plumbing runs only info and tiny (the steps that do not need a GPU to mean something)"
else
  # Before anything is installed or built: is there a GPU at all, and a venv that can use it?
  command -v nvidia-smi >/dev/null ||
    fail "no NVIDIA GPU here: nvidia-smi is not installed (install the NVIDIA driver; run this on a machine with one or more NVIDIA GPUs)"
  gpus=$(nvidia-smi -L 2>&1) || fail "nvidia-smi failed: $gpus"
  grep -q '^GPU [0-9]' <<<"$gpus" || fail "nvidia-smi lists no GPU: $gpus"
  if [[ -f $VENV/.emotions-tf-package ]] && ! grep -qx "$GPU_WHEEL" "$VENV/.emotions-tf-package"; then
    fail "$VENV holds $(cat "$VENV/.emotions-tf-package"), not the GPU wheel: start from a fresh venv (rm -rf $VENV .tflib; make gpu-check installs $GPU_WHEEL)"
  fi
  make --no-print-directory setup build TF_PACKAGE="$GPU_WHEEL" >&2 || fail "make setup build TF_PACKAGE='$GPU_WHEEL' failed"
fi
BIN=${BIN:-bin/emotions}
PY=$VENV/bin/python
[[ -x $BIN ]] || fail "$BIN is missing: run make build"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
mkdir -p "$work"
started=$(date +%s)

# record NAME JSON: RESULTS.md keeps GPU figures (never the CPU plumbing's).
record() {
  ((plumbing)) && return 0
  "$BIN" experiment record-benchmark --name "gpu-check-$1" --command "make gpu-check" "$2" >&2 ||
    echo "gpu-check: could not record $1 in RESULTS.md" >&2
}

# json EXPR VAR=FILE...: a Python expression over JSON files, as bench_lib.sh's.
json() {
  local expr=$1; shift
  "$PY" - "$expr" "$@" <<'PYEOF'
import json, sys
env = {"json": json}
for a in sys.argv[2:]:
    k, v = a.split("=", 1)
    env[k] = json.load(open(v))
print(eval(sys.argv[1], env))
PYEOF
}

# model NAME ARGS...: a new-model export under $work (reused when already there).
model() {
  local out=$work/$1; shift
  [[ -f $out/emotions.json ]] || "$BIN" new-model --out "$out" --seed 0 "$@" >"$work/new-model-$(basename "$out").log" 2>&1 || return 1
  echo "$out"
}

# train_epochs CHECK MODEL EPOCHS [TRAIN ARGS...]: train on faces4 on $device, then one line
# of what it did.
train_epochs() {
  local check=$1 m=$2 epochs=$3 run=$work/run-$1 t0 ok=true err=""
  shift 3
  rm -rf "$run"
  t0=$(date +%s.%N)
  if ! "$BIN" --device "$device" train --data data/faces4 --model "$m" --out "$run" --epochs "$epochs" \
      --no-early-stopping --no-reduce-lr --json "$@" >"$work/$check.json" 2>"$work/$check.log"; then
    ok=false err=$(tail -3 "$work/$check.log")
  fi
  if [[ $ok == true ]]; then
    json 'json.dumps({"check": "'"$check"'", "ok": True, "device": "'"$device"'", "epochs": len(H), "train_signature": S["versions"]["train_signature"], "wall_seconds": round('"$(date +%s.%N)"' - '"$t0"', 1),
      "epoch_seconds": [round(e["seconds"], 2) for e in H], "loss": [round(e["logs"]["loss"], 4) for e in H], "val_accuracy": [round(e["logs"]["val_accuracy"], 4) for e in H],
      "images_per_second_after_epoch_1": round(S["data"]["train_images"] // 64 * 64 * (len(H) - 1) / sum(e["seconds"] for e in H[1:]), 1) if len(H) > 1 else None})' \
      H="$run/history.json" S="$run/summary.json"
  else
    printf '{"check": "%s", "ok": false, "device": "%s", "error": %s}\n' "$check" "$device" "$(quote "$err")"
  fi
}

if want info; then
  m=$(model tiny --backbone tiny) || fail "new-model --backbone tiny failed: $(tail -3 "$work/new-model-tiny.log")"
  if "$BIN" --device "$device" info --json "$m" >"$work/info.json" 2>"$work/info.log"; then
    out=$(json 'json.dumps({"check": "info", "ok": True, "device": "'"$device"'", "devices": I["devices"], "gpu": I["gpu"]})' I="$work/info.json")
  else
    out=$(printf '{"check": "info", "ok": false, "device": "%s", "error": %s}' "$device" "$(quote "$(tail -3 "$work/info.log")")")
  fi
  line "$out"; record info "$out"
fi
if want tiny; then
  m=$(model tiny --backbone tiny) || fail "new-model --backbone tiny failed"
  out=$(train_epochs tiny "$m" 2 --replicas 1); line "$out"; record tiny "$out"
fi
if want replicas; then
  # new-model --replicas auto exports towers for every GPU here; train's --replicas default
  # uses them all (train_signature train_step_replicas_N; train_step on a single GPU).
  m=$(model tiny-replicas --backbone tiny --replicas auto) || fail "new-model --backbone tiny --replicas auto failed"
  out=$(train_epochs replicas "$m" 2); line "$out"; record replicas "$out"
fi
if want irv2; then
  for policy in none mixed_float16; do
    if m=$(model "irv2-$policy" --backbone inception_resnet_v2 --mixed-precision "$policy"); then
      out=$(train_epochs "irv2-$policy" "$m" 1)
    else
      out=$(printf '{"check": "irv2-%s", "ok": false, "error": "new-model failed: see %s"}' "$policy" "$work/new-model-irv2-$policy.log")
    fi
    line "$out"; record "irv2-$policy" "$out"
  done
fi
if want bench; then
  # bench-train's own model is the same export as irv2-none (backbone, seed): reuse it.
  mkdir -p "$work/bench"
  [[ -e $work/bench/model ]] || { [[ -d $work/irv2-none ]] && ln -s "$work/irv2-none" "$work/bench/model"; }
  if out=$(BENCH_DIR=$work/bench BENCH_ROUNDS=1 BENCH_EPOCHS=3 bash experiments/bench_train.sh 2>"$work/bench.log" | tail -1) && [[ $out == "{"* ]]; then
    line "{\"check\": \"bench\", \"ok\": true, \"device\": \"gpu\", \"bench_train\": $out}"
  else
    line "{\"check\": \"bench\", \"ok\": false, \"error\": \"bench-train failed: see $work/bench.log\"}"
  fi
fi

report=$(printf '%s\n' "${lines[@]}" | "$PY" -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
failed = [l["check"] for l in lines if not l.get("ok")]
print(json.dumps({"check": "report", "ok": not failed, "device": sys.argv[1], "steps": [l["check"] for l in lines],
                  "failed": failed, "seconds": int(sys.argv[2])}))' "$device" $(($(date +%s) - started)))
echo "$report"
[[ $report == *'"ok": true'* ]]
