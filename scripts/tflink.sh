#!/usr/bin/env bash
# Make the tensorflow-cpu wheel's C API linkable by graft, which links `-ltensorflow`:
# the wheel ships libtensorflow_cc.so.2 (it carries the C API) and libtensorflow_framework.so.2,
# so LINKDIR gets the two unversioned names graft's linker line asks for, and env.mk gets
# the cgo flags (headers from the wheel's include/, rpath to the wheel so the binary runs
# without LD_LIBRARY_PATH). Usage: tflink.sh PYTHON LINKDIR
set -euo pipefail
py=$1; linkdir=$2
tf=$("$py" -c 'import os, tensorflow as tf; print(os.path.dirname(os.path.realpath(tf.__file__)))' 2>/dev/null) \
  || { echo "tflink: tensorflow is not importable by $py (run make setup)" >&2; exit 1; }
for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2 include/tensorflow/c/c_api.h; do
  [ -e "$tf/$f" ] || { echo "tflink: $tf/$f is missing: not the tensorflow-cpu 2.18 wheel?" >&2; exit 1; }
done
mkdir -p "$linkdir"
ln -sfn "$tf/libtensorflow_cc.so.2" "$linkdir/libtensorflow.so"
ln -sfn "$tf/libtensorflow_framework.so.2" "$linkdir/libtensorflow_framework.so"
abs=$(cd "$linkdir" && pwd)
cat > "$linkdir/env.mk" <<MK
# written by scripts/tflink.sh: cgo flags for github.com/wamuir/graft against $tf
export CGO_CFLAGS := -I$tf/include
export CGO_LDFLAGS := -L$abs -ltensorflow -ltensorflow_framework -Wl,-rpath,$tf
MK
# The same for a shell: `source .tflib/env.sh` before running go by hand.
cat > "$linkdir/env.sh" <<SH
export CGO_ENABLED=1
export CGO_CFLAGS="-I$tf/include"
export CGO_LDFLAGS="-L$abs -ltensorflow -ltensorflow_framework -Wl,-rpath,$tf"
SH
echo "tflink: graft will link $tf/libtensorflow_cc.so.2 (C API) via $abs"
