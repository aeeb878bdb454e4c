#!/usr/bin/env bash
# bench-graph-opt: what --graph-optimization changes. One-epoch `emotions train` runs of the
# benchmark model (IRv2 by default) with `fast` (one pass of TensorFlow's graph optimisers on
# each signature's first run, the default) and `full` (TensorFlow's default, two passes),
# alternating, BENCH_ROUNDS rounds: the model's load time, the first train step (where the
# train_step graph is optimised) and the mean time of the epoch's other steps, from
# summary.json's timing. Those later steps share the two cores with the warm-ups train starts
# beside the first step (evaluate, snapshot, learning rate: optimised with the same setting),
# so they are not the steady step time: bench-train measures that. The last line is one JSON
# object (medians).
source "$(dirname "$0")/bench_lib.sh"
model=$(bench_model)
: >"$WORK/graphopt-fast.jsonl"; : >"$WORK/graphopt-full.jsonl"
for r in $(seq "$ROUNDS"); do
  for mode in fast full; do
    log "round $r/$ROUNDS: --graph-optimization $mode"
    rm -rf "$WORK/graphopt-run"
    "$BIN" --graph-optimization "$mode" train --data data/faces4 --model "$model" --out "$WORK/graphopt-run" \
      --epochs 1 --batch-size 64 --no-early-stopping --no-reduce-lr --seed 0 --cache '' --json >/dev/null 2>"$WORK/graphopt-$mode-$r.log"
    json 'json.dumps({"load_model_s": S["timing"]["load_model_s"], "first_step_s": S["timing"]["first_step_s"],
      "later_steps_s": (S["timing"]["train_step_s"] - S["timing"]["first_step_s"]) / (S["timing"]["steps"] - 1)})' \
      S="$WORK/graphopt-run/summary.json" >>"$WORK/graphopt-$mode.jsonl"
  done
done
out=$(json 'json.dumps((lambda f, g: {"bench": "graph-opt", "backbone": "'"$BACKBONE"'", "rounds": len(F),
  **{f"{mode}_{k}": round(median([x[k] for x in runs]), 3) for mode, runs in (("fast", F), ("full", G)) for k in ("load_model_s", "first_step_s", "later_steps_s")},
  "fast_first_step_runs": [round(x["first_step_s"], 2) for x in F], "full_first_step_runs": [round(x["first_step_s"], 2) for x in G]})(F, G))' \
  F="$WORK/graphopt-fast.jsonl" G="$WORK/graphopt-full.jsonl")
record bench-graph-opt "make bench-graph-opt" "$out"
