#!/usr/bin/env bash
# bench-study: the seed's study end to end on data/faces4, Go against the Python peer, each a
# user's whole run with nothing reused between rounds:
#   Go:   `emotions new-model` (a fresh export, EMOTIONS_MODEL_CACHE='') then `emotions train
#         --cache '' --test data/faces4/test` (cold face crops; the best model evaluated on test
#         in the same process; where train has no --test yet, a separate `emotions evaluate`)
#   peer: experiments/peers/study_peer.py (OpenCV Haar crops, export.py's build_model, Keras fit
#         with the seed's callbacks, the best checkpoint evaluated on test)
# Both: the same backbone and seed, batch 64, n // 64 steps per epoch, BENCH_EPOCHS epochs with
# no early stop, ReduceLROnPlateau and save_best_only checkpointing as the seed. Each round runs
# both sides, Go first in odd rounds and the peer first in even ones; figures are medians over
# BENCH_ROUNDS. Overhead = wall - time inside the train steps (the same TensorFlow kernels on
# both sides).
#   make bench-study                                             IRv2, 6 epochs, 2 rounds (~25 min, estimated)
#   BENCH_BACKBONE=tiny BENCH_EPOCHS=2 BENCH_ROUNDS=1 make bench-study   quick mode (~1 min)
#   BENCH_DROP_CACHES=1   also drop the OS page cache before each side (needs root; machine-wide)
#   BENCH_KEEP=1          keep each round's models and checkpoints (GBs with IRv2)
# Goals (#23): Go wall <= 0.7x the peer's, Go steady steps <= 1.0x the peer's. The last line is one JSON
# object, also recorded in RESULTS.md.
source "$(dirname "$0")/bench_lib.sh"
EPOCHS=${BENCH_EPOCHS:-6}
DATA=data/faces4
need_opencv
export EMOTIONS_MODEL_CACHE=  # no reuse of an exported model, once new-model has that cache

proc() { "$PY" experiments/bench_proc.py "$@"; }

# run_side LOG COMMAND...: run one process of a side, naming its log when it fails.
run_side() {
  local log_file=$1; shift
  "$@" 2>"$log_file" || { log "failed ($*): see $log_file"; exit 1; }
}

# drop_caches: empty the page cache when asked to (so neither side reads files the other just
# read); says so when it cannot.
drop_caches() {
  [[ ${BENCH_DROP_CACHES:-0} == 1 ]] || return 0
  sync
  if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    log "BENCH_DROP_CACHES=1: cannot write /proc/sys/vm/drop_caches (not root?): page cache kept"
  fi
}

# Whether this emotions train evaluates on a test folder itself (`--test`).
train_has_test=0
train_help=$("$BIN" train --help 2>&1 || true)
grep -qE -- '^[[:space:]]*--test[ ,=]' <<<"$train_help" && train_has_test=1
((train_has_test)) || log "emotions train has no --test yet: a separate \`emotions evaluate\` process is timed instead"

# go_side ROUND and peer_side ROUND: one side's whole run.
go_side() {
  local round=$1
  log "round $r/$ROUNDS: Go (new-model, train $EPOCHS epochs$( ((train_has_test)) && echo ' --test'))"
  drop_caches
  run_side "$round/go/new-model.log" proc --out "$round/go/new-model.proc.json" -- "$BIN" new-model \
    --backbone "$BACKBONE" --weights none --seed 0 --out "$round/go/model" >/dev/null
  test_flags=()
  ((train_has_test)) && test_flags=(--test "$DATA/test")
  run_side "$round/go/train.log" proc --out "$round/go/train.proc.json" -- "$BIN" train --data "$DATA" \
    --model "$round/go/model" --out "$round/go/run" --epochs "$EPOCHS" --batch-size 64 --no-early-stopping --seed 0 \
    --cache '' "${test_flags[@]}" >/dev/null
  if ((!train_has_test)); then
    run_side "$round/go/evaluate.log" proc --out "$round/go/evaluate.proc.json" --stdout "$round/go/evaluate.json" -- \
      "$BIN" evaluate --model "$round/go/run" --data "$DATA/test" --batch-size 64 --cache '' --json
  fi
  cp "$round/go/run/summary.json" "$round/go/summary.json"
}

peer_side() {
  local round=$1
  log "round $r/$ROUNDS: Python peer (OpenCV Haar, Keras fit $EPOCHS epochs, evaluate)"
  drop_caches
  run_side "$round/peer/log" proc --out "$round/peer/proc.json" --stdout "$round/peer/stdout" -- \
    "$PY" experiments/peers/study_peer.py --data "$DATA" --out "$round/peer/run" --backbone "$BACKBONE" \
    --epochs "$EPOCHS" --batch-size 64 --seed 0 --no-early-stopping
  tail -1 "$round/peer/stdout" >"$round/peer/figures.json"
}

loadavg_start=$(cat /proc/loadavg)
rounds=()
for r in $(seq "$ROUNDS"); do
  round=$WORK/study-$r
  rm -rf "$round"
  mkdir -p "$round/go" "$round/peer"
  rounds+=("$round")
  # Odd rounds run Go first, even rounds the peer first: a machine whose speed drifts during a
  # round then favours neither side over two rounds.
  if ((r % 2)); then
    go_side "$round"
    peer_side "$round"
  else
    peer_side "$round"
    go_side "$round"
  fi

  if [[ ${BENCH_KEEP:-0} != 1 ]]; then  # the figures stay; the GBs of weights go
    rm -rf "$round/go/model" "$round/go/run/best" "$round/go/run/last" "$round/peer/run"
  fi
done

out=$("$PY" experiments/bench_study_figures.py --backbone "$BACKBONE" --epochs "$EPOCHS" \
  --loadavg-start "$loadavg_start" "${rounds[@]}")
record bench-study "BENCH_BACKBONE=$BACKBONE BENCH_EPOCHS=$EPOCHS BENCH_ROUNDS=$ROUNDS make bench-study" "$out"
