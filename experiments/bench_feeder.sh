#!/usr/bin/env bash
# bench-feeder: the training batch feeder alone (train.DatasetSource over faces4 train's cached
# crops -> normalised float batches of 64, plain and augmented), no TensorFlow step: what the
# host can feed a GPU. Goal: augmented >= 5,000 images/s on 2 cores. The last line is one JSON
# object, recorded in RESULTS.md with the CPU flags.
source "$(dirname "$0")/bench_lib.sh"
go build -o "$WORK/benchfeeder" ./experiments/benchfeeder
out=$("$WORK/benchfeeder" -seconds "${BENCH_SECONDS:-10}" | tail -1)
out=$(json 'json.dumps(dict(F, load_average_1m='"$(cut -d' ' -f1 /proc/loadavg)"'), sort_keys=True)' F=<(echo "$out"))
record bench-feeder "make bench-feeder" "$out"
