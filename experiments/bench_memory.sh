#!/usr/bin/env bash
# bench-memory: peak RSS (/usr/bin/time -v "Maximum resident set size") of a training run:
# `emotions train` vs the Keras peer's model.fit, same model (backbone, seed), same tensors,
# same epochs, batch 64, both validating on faces4/valid after each epoch and checkpointing the
# best model (save_best_only), as the seed's fit did. Alternates Go and Keras; medians over
# BENCH_ROUNDS.
#   make bench-memory                                   IRv2, 2 epochs, 2 rounds (~8 min)
#   BENCH_BACKBONE=tiny make bench-memory               quick mode
# The Go figure includes its preprocessing of the images (the npz is read by Keras instead).
# The last line is one JSON object.
source "$(dirname "$0")/bench_lib.sh"
EPOCHS=${BENCH_EPOCHS:-2}
model=$(bench_model)
npz=$(bench_npz data/faces4/train)
valid_npz=$(bench_npz data/faces4/valid)

peak_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f\n", $2 / 1024}' "$1"; }
: >"$WORK/go-rss.txt"; : >"$WORK/keras-rss.txt"
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS: emotions train"
  rm -rf "$WORK/mem-go-$r"
  /usr/bin/time -v -o "$WORK/mem-go-$r.time" "$BIN" train --data data/faces4 --model "$model" --out "$WORK/mem-go-$r" \
    --epochs "$EPOCHS" --batch-size 64 --no-early-stopping --no-reduce-lr --seed 0 >/dev/null 2>"$WORK/mem-go-$r.log"
  peak_mb "$WORK/mem-go-$r.time" >>"$WORK/go-rss.txt"
  log "round $r/$ROUNDS: Keras model.fit"
  /usr/bin/time -v -o "$WORK/mem-keras-$r.time" "$PY" experiments/peers/keras_fit.py --npz "$npz" --backbone "$BACKBONE" \
    --epochs "$EPOCHS" --batch-size 64 --valid-npz "$valid_npz" --checkpoint "$WORK/mem-keras-$r.keras" \
    >/dev/null 2>"$WORK/mem-keras-$r.log"
  peak_mb "$WORK/mem-keras-$r.time" >>"$WORK/keras-rss.txt"
done
out=$("$PY" - "$WORK/go-rss.txt" "$WORK/keras-rss.txt" <<PYEOF
import json, statistics, sys
g = [float(l) for l in open(sys.argv[1]) if l.strip()]
k = [float(l) for l in open(sys.argv[2]) if l.strip()]
print(json.dumps({"bench": "memory", "backbone": "$BACKBONE", "epochs": $EPOCHS, "batch_size": 64, "rounds": len(g),
                  "go_peak_rss_mb": statistics.median(g), "keras_peak_rss_mb": statistics.median(k),
                  "go_over_keras": round(statistics.median(g) / statistics.median(k), 3), "go_runs_mb": g, "keras_runs_mb": k}))
PYEOF
)
record bench-memory "BENCH_BACKBONE=$BACKBONE BENCH_EPOCHS=$EPOCHS BENCH_ROUNDS=$ROUNDS make bench-memory" "$out"
