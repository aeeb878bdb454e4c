#!/usr/bin/env bash
# bench-checkpoint: what the background checkpoint writes cost the train step, two builds
# against each other. Each run is `emotions train` on data/faces4 with the study's recipe
# (best/ on every improvement, last/ every epoch: the writes happen while the next epoch's steps
# run), BENCH_EPOCHS epochs with no early stop, from one exported model. The figure is the
# steady step time: the time inside the train steps after the first (graph optimisation), from
# summary.json. Builds alternate (A, B, A, B, ...) so drift in machine load hits both; medians
# over BENCH_ROUNDS.
#   BIN_B=/path/to/other/emotions make bench-checkpoint      A = bin/emotions, B = BIN_B
#   BENCH_BACKBONE=tiny BENCH_ROUNDS=1 ...                      quick mode
# The last line is one JSON object, also recorded in RESULTS.md.
source "$(dirname "$0")/bench_lib.sh"
EPOCHS=${BENCH_EPOCHS:-6}
BIN_B=${BIN_B:?set BIN_B to the build to compare with $BIN}
[[ -x $BIN_B ]] || { echo "bench: $BIN_B missing" >&2; exit 1; }
model=$(bench_model)

runs=$WORK/checkpoint
rm -rf "$runs"
mkdir -p "$runs"
for r in $(seq "$ROUNDS"); do
  for side in a b; do
    bin=$BIN
    [[ $side == b ]] && bin=$BIN_B
    log "round $r/$ROUNDS: $side ($bin), train $EPOCHS epochs"
    "$bin" train --data data/faces4 --model "$model" --out "$runs/$side-$r" --epochs "$EPOCHS" --batch-size 64 \
      --no-early-stopping --seed 0 >"$runs/$side-$r.log" 2>&1 || { log "failed: see $runs/$side-$r.log"; exit 1; }
    json 'json.dumps({"steady_step_s": (S["timing"]["train_step_s"] - S["timing"]["first_step_s"]) / (S["timing"]["steps"] - 1),
      "checkpoint_blocking_s": S["timing"]["checkpoint_blocking_s"], "fit_s": S["timing"]["fit_s"]})' \
      S="$runs/$side-$r/summary.json" >>"$runs/$side.jsonl"
    rm -rf "$runs/$side-$r/best" "$runs/$side-$r/last"
  done
done

printf '{"backbone": "%s", "epochs": %d, "a": "%s", "b": "%s"}' "$BACKBONE" "$EPOCHS" "$BIN" "$BIN_B" >"$runs/meta.json"
out=$(json 'json.dumps({"bench": "checkpoint", **M, "rounds": len(A),
  "a_steady_step_s": round(median(x["steady_step_s"] for x in A), 4), "b_steady_step_s": round(median(x["steady_step_s"] for x in B), 4),
  "a_steady_runs": [round(x["steady_step_s"], 4) for x in A], "b_steady_runs": [round(x["steady_step_s"], 4) for x in B],
  "a_fit_s": round(median(x["fit_s"] for x in A), 2), "b_fit_s": round(median(x["fit_s"] for x in B), 2),
  "a_checkpoint_blocking_s": round(median(x["checkpoint_blocking_s"] for x in A), 3),
  "b_checkpoint_blocking_s": round(median(x["checkpoint_blocking_s"] for x in B), 3),
  "b_over_a_steady": round(median(x["steady_step_s"] for x in B) / median(x["steady_step_s"] for x in A), 3)})' \
  A="$runs/a.jsonl" B="$runs/b.jsonl" M="$runs/meta.json")
record bench-checkpoint "BIN_B=$BIN_B BENCH_BACKBONE=$BACKBONE BENCH_EPOCHS=$EPOCHS BENCH_ROUNDS=$ROUNDS make bench-checkpoint" "$out"
