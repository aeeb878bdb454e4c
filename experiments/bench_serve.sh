#!/usr/bin/env bash
# bench-serve: REST :predict throughput and latency of `emotions serve` on loopback, with 1
# and 32 concurrent clients for a fixed time each (bounded: BENCH_SECONDS per level), every
# answer checked against a direct tfgraph Predict of the same model on the same input.
#   make bench-serve                                InceptionResNetV2 (where batching matters), 10 s per level
#   BENCH_BACKBONE=tiny make bench-serve            the tiny test model (JSON parsing dominates it)
#   BENCH_MODEL=DIR make bench-serve                a model or run directory of your own
# Then memory, with the server's default limits:
#   burst: BENCH_BURST (32) concurrent :predict bodies of just under BENCH_BURST_BYTES (64 MiB,
#     --max-request-bytes): goal no 504, each refused (429) within about a second, RSS
#     BENCH_SETTLE (10 s) after the burst within 1.2x the RSS before it;
#   swaps: BENCH_SWAPS (50) versions of a ResNet50 export (~92 MB of variables, input
#     BENCH_SWAP_SIZE=32 px, random init) swapped in under a polling server: goal RSS after the
#     last within 1.15x RSS after the first. BENCH_BURST=0 / BENCH_SWAPS=0 skip them.
#   EMOTIONS_SERVE_MEMORY_RETURN=off (nothing) or go (Go's heap only) in the environment shows
#   what the server's memory return after bursts and unloads brings back (unset: all of it).
# Goal: batching makes 32 clients' throughput >= 3x one client's. The last line is one JSON
# object.
BENCH_BACKBONE=${BENCH_BACKBONE:-inception_resnet_v2}
source "$(dirname "$0")/bench_lib.sh"
SECONDS_PER_LEVEL=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-1,32}
model=${BENCH_MODEL:-${1:-$(bench_model)}}
base=$(mktemp -d "$WORK/serve-base.XXXXXX")
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; rm -rf "$base"; }
trap cleanup EXIT

"$BIN" export --model "$model" --out "$base" >&2
go build -o "$WORK/benchserve" ./experiments/benchserve

port=$((20000 + RANDOM % 20000))
"$BIN" serve --model-base "$base" --model-name bench --host 127.0.0.1 --port "$port" --grpc-port -1 \
  ${BENCH_SERVE_FLAGS:-} 2>"$WORK/serve.log" &
server_pid=$!
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "bench: the server exited: $(tail -3 "$WORK/serve.log")" >&2; exit 1; }
  sleep 0.5
done
log "serving $model ($BACKBONE) on 127.0.0.1:$port; clients $CLIENTS, ${SECONDS_PER_LEVEL}s each"
"$WORK/benchserve" --url "http://127.0.0.1:$port/v1/models/bench:predict" --model "$base/1" \
  --clients "$CLIENTS" --duration "${SECONDS_PER_LEVEL}s" >"$WORK/benchserve.out"
cat "$WORK/benchserve.out" >&2
batches=$(curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^emotions_serve_batch_(size|requests)_(sum|count)' | tr '\n' ' ')
log "server batching: $batches"
results=("$(tail -1 "$WORK/benchserve.out")")
BURST=${BENCH_BURST:-32}
SETTLE=${BENCH_SETTLE:-10s}
if (( BURST > 0 )); then
  log "burst: $BURST concurrent bodies of ${BENCH_BURST_BYTES:-67108864} bytes"
  results+=("$("$WORK/benchserve" --mode burst --url "http://127.0.0.1:$port/v1/models/bench:predict" --model "$base/1" \
    --n "$BURST" --bytes "${BENCH_BURST_BYTES:-67108864}" --pid "$server_pid" --settle "$SETTLE")")
  log "burst: ${results[-1]}"
  curl -sf "http://127.0.0.1:$port/metrics" | grep -E '^emotions_serve_(admission_refused_total|memory_returns_total|request_bytes_count)' >&2 || true
fi
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=

SWAPS=${BENCH_SWAPS:-50}
if (( SWAPS > 0 )); then
  swap_model=$WORK/swap-resnet50-${BENCH_SWAP_SIZE:-32}
  [[ -f $swap_model/emotions.json ]] || "$BIN" new-model --backbone resnet50 --weights none --seed 0 \
    --input-size "${BENCH_SWAP_SIZE:-32}" --out "$swap_model" >&2
  swap_base=$base/swaps
  "$BIN" export --model "$swap_model" --out "$swap_base" >&2
  log "swaps: $SWAPS versions of $(du -sh "$swap_base/1/variables" | cut -f1) of variables"
  "$BIN" serve --model-base "$swap_base" --model-name swap --host 127.0.0.1 --port "$port" --grpc-port -1 \
    ${BENCH_SERVE_FLAGS:-} 2>"$WORK/serve-swaps.log" &
  server_pid=$!
  results+=("$("$WORK/benchserve" --mode swaps --url "http://127.0.0.1:$port/v1/models/swap" --base "$swap_base" \
    --n "$SWAPS" --pid "$server_pid" --settle "$SETTLE")")
  log "swaps: ${results[-1]}"
fi
cpu_flags=$(grep -o 'avx512[a-z_0-9]*\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
line=$("$PY" -c 'import json, sys
out = {}
for l in sys.argv[2:]:
    out.update(json.loads(l))
out["cpu_flags"] = sys.argv[1].strip()
print(json.dumps(out, separators=(",", ":")))' "$cpu_flags" "${results[@]}")
record bench-serve "BENCH_BACKBONE=$BACKBONE BENCH_SECONDS=$SECONDS_PER_LEVEL BENCH_BURST=$BURST BENCH_SWAPS=$SWAPS make bench-serve" "$line"
