#!/usr/bin/env bash
# `make demo`: the seed's study end to end on the embedded faces4 dataset:
# a new InceptionResNetV2 (80x80, random init: ImageNet weights cannot be downloaded here),
# trained with the seed's recipe (Adam 1e-3, batch 64, 50 epochs, EarlyStopping(val_loss, 10),
# ModelCheckpoint(save_best_only), ReduceLROnPlateau(0.2, 5, min_lr 1e-4)), then evaluated
# on the identity-disjoint test split. Set DEMO_BACKBONE=tiny for a one-minute run.
set -euo pipefail
cd "$(dirname "$0")/.."
EMO=bin/emotions
DATA=${DEMO_DATA:-data/faces4}
BACKBONE=${DEMO_BACKBONE:-inception_resnet_v2}
MODEL=runs/demo-model-$BACKBONE
RUN=runs/demo
export TF_CPP_MIN_LOG_LEVEL=2

if [ ! -f "$MODEL/saved_model.pb" ]; then
  "$EMO" new-model --backbone "$BACKBONE" --seed 0 --out "$MODEL"
fi
rm -rf "$RUN"
# --test: the best model is evaluated on the test split at the end, in the training process.
"$EMO" train --data "$DATA" --model "$MODEL" --out "$RUN" --test "$DATA/test" ${DEMO_TRAIN_FLAGS:-} | tee "$RUN.txt"
echo
echo "test split: $(grep -m1 '^accuracy' "$RUN.txt")"
echo "plots: $RUN/loss.png $RUN/accuracy.png $RUN/confusion.png; best model: $RUN/best"
