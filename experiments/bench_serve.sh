#!/usr/bin/env bash
# bench-serve: REST :predict throughput and latency of `emotions serve` on loopback, with 1
# and 32 concurrent clients for a fixed time each (bounded: BENCH_SECONDS per level), every
# answer checked against a direct tfgraph Predict of the same model on the same input.
#   make bench-serve                                InceptionResNetV2 (where batching matters), 10 s per level
#   BENCH_BACKBONE=tiny make bench-serve            the tiny test model (JSON parsing dominates it)
#   BENCH_MODEL=DIR make bench-serve                a model or run directory of your own
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
record bench-serve "BENCH_BACKBONE=$BACKBONE BENCH_SECONDS=$SECONDS_PER_LEVEL make bench-serve" "$(tail -1 "$WORK/benchserve.out")"
