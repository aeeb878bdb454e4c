#!/usr/bin/env bash
# bench-train: `emotions train` vs Keras model.fit on the same model (same backbone, seed) and
# the same tensors (the npz of `emotions preprocess` of data/faces4/train), batch 64, plus the
# raw limit (train_step back to back on one resident batch, experiments/benchtrain), each
# round running Go, Keras, raw in turn. Go trains with --augment (host-side, overlapped with
# the step), validation after every epoch and last/ saved every epoch (best/ when improving).
# Rates leave out epoch 1 (graph optimisation / tracing). go_images_per_second and Keras' rate
# count the training steps only (Keras fit without validation data); go_loop_images_per_second
# counts whole epochs: steps, validation, callbacks, checkpoint waits. With the tiny backbone a
# step takes a few ms, as InceptionResNetV2's does on a GPU: go_loop_over_raw then shows what
# the loop costs outside the step (goal >= 0.95). BENCH_TF_THREADS=1 gives TensorFlow one core
# on every side (Go, Keras, raw) and leaves the other to the host, as a GPU machine leaves its
# CPU to the host while the GPU computes: the GPU-speed proxy without the two sharing a core.
#   make bench-train                                  IRv2, 3 epochs, 2 rounds (~10 min; BENCH_ROUNDS=3
#                                                     for a median that a busy neighbour cannot skew)
#   BENCH_BACKBONE=tiny BENCH_EPOCHS=4 make bench-train   quick mode (~1 min)
# The last line is one JSON object.
source "$(dirname "$0")/bench_lib.sh"
EPOCHS=${BENCH_EPOCHS:-3}
TF_THREADS=${BENCH_TF_THREADS:-0}  # 0: TensorFlow's default (all cores)
if ((TF_THREADS > 0)); then
  export EMOTIONS_THREADS=$TF_THREADS EMOTIONS_INTER_OP_THREADS=$TF_THREADS  # emotions train
  export TF_NUM_INTRAOP_THREADS=$TF_THREADS TF_NUM_INTEROP_THREADS=$TF_THREADS  # Keras
fi
model=$(bench_model)
npz=$(bench_npz data/faces4/train)
go build -o "$WORK/benchtrain" ./experiments/benchtrain

: >"$WORK/go-train.jsonl"; : >"$WORK/keras-train.jsonl"; : >"$WORK/raw-train.jsonl"
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS: emotions train ($EPOCHS epochs)"
  rm -rf "$WORK/go-run-$r"
  "$BIN" train --data data/faces4 --model "$model" --out "$WORK/go-run-$r" --epochs "$EPOCHS" --batch-size 64 \
    --no-early-stopping --no-reduce-lr --augment --seed 0 --json >/dev/null 2>"$WORK/go-run-$r.log"
  # Training-step seconds per epoch (history.json excludes validation and checkpointing).
  go_rate "$WORK/go-run-$r" >>"$WORK/go-train.jsonl"
  log "round $r/$ROUNDS: Keras model.fit"
  "$PY" experiments/peers/keras_fit.py --npz "$npz" --backbone "$BACKBONE" --epochs "$EPOCHS" --batch-size 64 \
    2>"$WORK/keras-run-$r.log" | tail -1 >>"$WORK/keras-train.jsonl"
  log "round $r/$ROUNDS: raw train_step limit"
  "$WORK/benchtrain" --model "$model" --batch-size 64 --threads "$TF_THREADS" --steps $((9 * (EPOCHS - 1) > 9 ? 9 * (EPOCHS - 1) : 9)) \
    2>"$WORK/raw-run-$r.log" | tail -1 >>"$WORK/raw-train.jsonl"
done

out=$(json 'json.dumps((lambda g, loop, k, raw: {"bench": "train", "backbone": "'"$BACKBONE"'", "batch_size": 64, "epochs": '"$EPOCHS"', "rounds": len(G), "tf_threads": '"$TF_THREADS"',
  "go_images_per_second": round(g, 2), "go_loop_images_per_second": round(loop, 2), "keras_images_per_second": round(k, 2),
  "go_over_keras": round(g / k, 3), "raw_images_per_second": round(raw, 2), "go_over_raw": round(g / raw, 3), "go_loop_over_raw": round(loop / raw, 3),
  "go_runs": [round(x["images_per_second"], 1) for x in G], "go_loop_runs": [round(x["loop_images_per_second"], 1) for x in G],
  "keras_runs": [round(x["images_per_second"], 1) for x in K], "raw_runs": [round(x["raw_images_per_second"], 1) for x in R],
  "goal": "go_loop_over_raw >= 0.95" if "'"$BACKBONE"'" == "tiny" else "go_over_keras >= 1.05 and go_over_raw >= 0.97",
  "goal_met": loop / raw >= 0.95 if "'"$BACKBONE"'" == "tiny" else (g / k >= 1.05 and g / raw >= 0.97)})(
  median([x["images_per_second"] for x in G]), median([x["loop_images_per_second"] for x in G]),
  median([x["images_per_second"] for x in K]), median([x["raw_images_per_second"] for x in R])))' \
  G="$WORK/go-train.jsonl" K="$WORK/keras-train.jsonl" R="$WORK/raw-train.jsonl")
record bench-train "BENCH_BACKBONE=$BACKBONE BENCH_EPOCHS=$EPOCHS BENCH_ROUNDS=$ROUNDS BENCH_TF_THREADS=$TF_THREADS make bench-train" "$out"
