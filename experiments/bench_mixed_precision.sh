#!/usr/bin/env bash
# bench-mixed-precision: InceptionResNetV2 80x80's train step (batch 64, the raw limit:
# experiments/benchtrain, train_step back to back on one resident batch) exported as float32
# and under --mixed-precision mixed_bfloat16 (and mixed_float16 with BENCH_FLOAT16=1), rounds
# alternating the variants. bfloat16 can only speed a CPU up where it has bfloat16 arithmetic
# (avx512_bf16 or amx_bf16 in /proc/cpuinfo, used through oneDNN): the figures are recorded
# with the CPU's flags, and "bf16_hardware": false says a slowdown there is expected.
#   make bench-mixed-precision          2 rounds (~6 min on an AVX-512 machine)
# The last line is one JSON object.
source "$(dirname "$0")/bench_lib.sh"
STEPS=${BENCH_STEPS:-12}
variants=(none mixed_bfloat16)
[[ ${BENCH_FLOAT16:-0} == 1 ]] && variants+=(mixed_float16)
go build -o "$WORK/benchtrain" ./experiments/benchtrain
for v in "${variants[@]}"; do
  if [[ ! -f $WORK/model-$v/emotions.json ]]; then
    log "exporting $BACKBONE ($v) to $WORK/model-$v"
    "$BIN" new-model --backbone "$BACKBONE" --weights none --seed 0 --mixed-precision "$v" --out "$WORK/model-$v" >&2
  fi
  : >"$WORK/raw-$v.jsonl"
done
for r in $(seq "$ROUNDS"); do
  for v in "${variants[@]}"; do
    log "round $r/$ROUNDS: raw train_step, $v"
    "$WORK/benchtrain" --model "$WORK/model-$v" --batch-size 64 --steps "$STEPS" 2>"$WORK/raw-$v-$r.log" | tail -1 >>"$WORK/raw-$v.jsonl"
  done
done
flags=$(grep -o -w 'avx2\|avx512f\|avx512_bf16\|amx_bf16\|amx_tile\|avx512_fp16' /proc/cpuinfo | sort -u | tr '\n' ' ')
args=()
for v in "${variants[@]}"; do args+=("$v=$WORK/raw-$v.jsonl"); done
names=$(printf '"%s",' "${variants[@]}")
out=$(json '(lambda rates: json.dumps({"bench": "mixed-precision", "backbone": "'"$BACKBONE"'", "batch_size": 64,
  "rounds": '"$ROUNDS"', "steps": '"$STEPS"', "cpu_flags": "'"${flags% }"'",
  "bf16_hardware": any(f in "'"$flags"'" for f in ("avx512_bf16", "amx_bf16")),
  "images_per_second": {v: round(r, 2) for v, r in rates.items()},
  "runs": {v: [round(x["raw_images_per_second"], 1) for x in globals()[v]] for v in rates},
  "bf16_over_float32": round(rates["mixed_bfloat16"] / rates["none"], 3)}))(
  {v: median([x["raw_images_per_second"] for x in globals()[v]]) for v in ['"${names%,}"']})' "${args[@]}")
record bench-mixed-precision "BENCH_BACKBONE=$BACKBONE BENCH_ROUNDS=$ROUNDS BENCH_STEPS=$STEPS make bench-mixed-precision" "$out"
