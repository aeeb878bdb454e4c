#!/usr/bin/env bash
# bench-predict: photo file -> label (decode + face crop + inference), Go vs a Python user's
# path, same model: batch-1 latency (median over N photos) and batch-N throughput.
#   Go:     experiments/benchpredict (package preprocess + tfgraph, the code `emotions` runs)
#   Python: experiments/peers/predict_peer.py (OpenCV 4 + Haar cascade + tf.saved_model.load of
#           the model directory, its serve signature); needs opencv-python-headless<5 in .venv (installed on
#           first use).
#   make bench-predict                      IRv2, 64 photos of data/faces4/test, 2 rounds (~4 min)
#   BENCH_BACKBONE=tiny make bench-predict  quick mode
# Goal: Go's time <= 0.7x Python's. The last line is one JSON object.
source "$(dirname "$0")/bench_lib.sh"
N=${BENCH_N:-64}
model=$(bench_model)
need_opencv
go build -o "$WORK/benchpredict" ./experiments/benchpredict

: >"$WORK/go-predict.jsonl"; : >"$WORK/py-predict.jsonl"
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS: Go"
  "$WORK/benchpredict" --model "$model" --images data/faces4/test --n "$N" 2>"$WORK/go-predict-$r.log" | tail -1 >>"$WORK/go-predict.jsonl"
  log "round $r/$ROUNDS: Python"
  "$PY" experiments/peers/predict_peer.py --model "$model" --images data/faces4/test --n "$N" 2>"$WORK/py-predict-$r.log" | tail -1 >>"$WORK/py-predict.jsonl"
done
out=$(json 'json.dumps((lambda gl, pl, gt, pt: {"bench": "predict", "backbone": "'"$BACKBONE"'", "photos": '"$N"', "rounds": len(G),
  "go_batch1_ms": round(gl, 2), "python_batch1_ms": round(pl, 2), "go_over_python_batch1_time": round(gl / pl, 3),
  "go_batch_images_per_second": round(gt, 1), "python_batch_images_per_second": round(pt, 1), "go_over_python_batch_time": round(pt / gt, 3),
  "python_haar_detect_ms": round(median([x["detect_ms_median"] for x in P]), 2), "python_faces_found_share": P[-1]["faces_found_share"],
  "goal": "go time <= 0.7x python", "goal_met": gl / pl <= 0.7 and pt / gt <= 0.7})(
  median([x["batch1_latency_ms"] for x in G]), median([x["batch1_latency_ms"] for x in P]),
  median([x["batch_images_per_second"] for x in G]), median([x["batch_images_per_second"] for x in P])))' \
  G="$WORK/go-predict.jsonl" P="$WORK/py-predict.jsonl")
record bench-predict "BENCH_BACKBONE=$BACKBONE BENCH_N=$N BENCH_ROUNDS=$ROUNDS make bench-predict" "$out"
