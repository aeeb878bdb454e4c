#!/usr/bin/env bash
# Fuzzes every decoder of bytes the project takes from clients or files, one target after
# the other, FUZZTIME each (`make fuzz`: 60s; `make fuzz-short`, part of `make test`: 500
# inputs, "500x"). make test's budget is a count, not a duration: with a duration, Go 1.26's
# fuzzing coordinator can report "context deadline exceeded" as a failure when the time runs
# out while a worker is busy (golang/go#75804, fixed in Go 1.27), which a loaded machine makes
# likely (seen: FuzzBMPDecoder, 3 s, beside two CPU burners). A duration run that ends so,
# with no failing input written, is reported as "deadline" (not a finding) and does not fail.
# An input that fails is saved by `go test` under the package's testdata/fuzz/<target>/,
# where it then runs with the plain tests too. Ends with one line per target: how long it
# ran and how many inputs (execs) it tried. Needs the cgo flags of .tflib/env.sh (the
# Makefile exports them).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
# go test spends up to 60 s minimising each new interesting input by default, counted in
# FUZZTIME but not in execs: with the image decoders' slower inputs a whole minute went to
# it (41 execs). 5 s keeps the corpus small enough and leaves the time to fuzzing.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

targets=(
  "./tfserving FuzzTensorProto"       # gRPC request tensors
  "./tfserving FuzzJSONSplit"         # the JSON splitter: objectFields, listElements, skipValue
  "./tfserving FuzzJSONTensor"        # the JSON tensor parser
  "./tfserving FuzzPredictBody"       # whole :predict bodies (parsePredictBody, decodeInputs)
  "./tfserving FuzzClassifyImageBody" # :classify_image bodies: raw, or JSON with base64
  "./tfserving FuzzStringInputs"      # string inputs: JSON strings and {"b64": ...}, gRPC string_val
  "./tfserving FuzzBundleIndex"       # a version's variables/variables.index (tensor-bundle table)
  "./tfserving FuzzTFRecords"         # a version's assets.extra/tf_serving_warmup_requests framing
  "./preprocess FuzzPreprocessBytes"  # image decoding, from bytes to crop
  "./preprocess FuzzBMPDecoder"       # the project's own BMP decoder (RLE, bitfields, OS/2)
  "./preprocess FuzzTIFFDecoder"      # TIFF (strips, tiles, planar, JPEG-in-TIFF, CCITT)
  "./preprocess FuzzGIFDecoder"       # GIF first frames
  "./preprocess FuzzJPEGDecoder"      # JPEG, with the libjpeg-style chroma upsampling
  "./preprocess FuzzWebPDecoder"      # WebP, incl. the first frame of an animation
  "./recipe FuzzReadSoftTargets"      # train --soft-targets CSV files
  "./arrays FuzzReadNPZ"              # NumPy .npz archives (train/evaluate/predict --data)
)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
status=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  echo "fuzz: $name ($pkg) for $FUZZTIME"
  start=$SECONDS
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" >"$log" 2>&1; then
    result=ok
  elif [[ $FUZZTIME != *x ]] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written\|panic:' "$log"; then
    result=deadline
  else
    result=FAILED
    status=1
    cat "$log"
  fi
  # go test's last progress line: "fuzz: elapsed: 3s, execs: 1234 (411/sec), new interesting: ...";
  # a short run may end while it still replays the corpus, before printing one ("-").
  last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -1 || true)
  elapsed=$(sed -nE 's/^fuzz: elapsed: ([0-9a-z.]+),.*/\1/p' <<<"$last")
  execs=$(sed -nE 's/.*execs: ([0-9]+) .*/\1/p' <<<"$last")
  summary+=("$(printf '%-24s %-12s %-6s fuzzing %-6s execs %-10s (wall %ss with the build)' "$name" "$pkg" "$result" "${elapsed:--}" "${execs:--}" $((SECONDS - start)))")
done
printf '%s\n' "${summary[@]}"
exit $status
