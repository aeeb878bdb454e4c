#!/usr/bin/env bash
# bench-replicas: the N-tower train step (new-model --replicas 2, train --cpu-devices 2
# --replicas 2) against one tower, on this machine's CPU: 2 towers on 2 logical CPU devices
# with one intra-op thread each (2 inter-op threads, so the towers run side by side) vs 1
# tower with 2 intra-op threads, the same global batch; experiments/benchtrain (train_step
# back to back on one resident batch), rounds alternating. A CPU proxy of the scaling over
# GPUs: the two logical devices share one CPU's cores, caches and memory bandwidth, which
# GPUs do not. Small by default (tiny backbone, 64x64, batch 32): the machine is shared.
#   make bench-replicas               2 rounds (~1 min on 2 cores)
# The last line is one JSON object.
BENCH_BACKBONE=${BENCH_BACKBONE:-tiny}
source "$(dirname "$0")/bench_lib.sh"
STEPS=${BENCH_STEPS:-20}
BATCH=${BENCH_BATCH:-32}
SIZE=${BENCH_INPUT_SIZE:-64}
go build -o "$WORK/benchtrain" ./experiments/benchtrain
model=$WORK/model-replicas2-$SIZE
if [[ ! -f $model/emotions.json ]]; then
  log "exporting $BACKBONE ${SIZE}x$SIZE with 2 towers to $model"
  "$BIN" new-model --backbone "$BACKBONE" --input-size "$SIZE" --weights none --seed 0 --replicas 2 --out "$model" >&2
fi
: >"$WORK/replicas-1.jsonl"
: >"$WORK/replicas-2.jsonl"
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS: 1 tower, 2 intra-op threads"
  "$WORK/benchtrain" --model "$model" --batch-size "$BATCH" --steps "$STEPS" --threads 2 | tail -1 >>"$WORK/replicas-1.jsonl"
  log "round $r/$ROUNDS: 2 towers on 2 logical CPU devices, 1 intra-op thread each"
  "$WORK/benchtrain" --model "$model" --batch-size "$BATCH" --steps "$STEPS" --threads 1 --inter-threads 2 \
    --cpu-devices 2 --replicas 2 | tail -1 >>"$WORK/replicas-2.jsonl"
done
flags=$(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16\|amx_tile\|avx512_fp16' /proc/cpuinfo | sort -u | tr '\n' ' ')
out=$(json '(lambda one, two: json.dumps({"bench": "replicas", "backbone": "'"$BACKBONE"'", "input_size": '"$SIZE"',
  "batch_size": '"$BATCH"', "rounds": '"$ROUNDS"', "steps": '"$STEPS"', "cores": '"$(nproc)"', "cpu_flags": "'"${flags% }"'",
  "proxy": "logical CPU devices sharing one CPU, not GPUs",
  "one_tower_2_threads_images_per_second": round(one, 2), "two_towers_1_thread_images_per_second": round(two, 2),
  "runs": {"one_tower": [round(x["raw_images_per_second"], 1) for x in R1], "two_towers": [round(x["raw_images_per_second"], 1) for x in R2]},
  "two_over_one": round(two / one, 3)}))(median([x["raw_images_per_second"] for x in R1]), median([x["raw_images_per_second"] for x in R2]))' \
  R1="$WORK/replicas-1.jsonl" R2="$WORK/replicas-2.jsonl")
record bench-replicas "BENCH_ROUNDS=$ROUNDS BENCH_STEPS=$STEPS BENCH_BATCH=$BATCH BENCH_INPUT_SIZE=$SIZE make bench-replicas" "$out"
