#!/usr/bin/env bash
# Make a TensorFlow 2.18 wheel's C API linkable by graft, which links `-ltensorflow`: the wheel
# (tensorflow-cpu, or tensorflow: the CUDA build) ships libtensorflow_cc.so.2 (it carries the C
# API) and libtensorflow_framework.so.2, so LINKDIR gets the two unversioned names graft's linker
# line asks for, and env.mk gets the cgo flags (headers from the wheel's include/, rpath to the
# wheel so the binary runs without LD_LIBRARY_PATH). Usage: tflink.sh PYTHON LINKDIR
set -euo pipefail
py=$1; linkdir=$2
here=$(cd "$(dirname "$0")" && pwd)
read -r tf cuda < <("$py" -c 'import os, tensorflow as tf
print(os.path.dirname(os.path.realpath(tf.__file__)), bool(tf.sysconfig.get_build_info().get("is_cuda_build")))' 2>/dev/null) \
  || { echo "tflink: tensorflow is not importable by $py (run make setup)" >&2; exit 1; }
wheel=$("$py" "$here/tfwheel.py" describe)
for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2 include/tensorflow/c/c_api.h; do
  [ -e "$tf/$f" ] || { echo "tflink: $tf/$f is missing: $wheel is not a TensorFlow 2.18 wheel (tensorflow-cpu or tensorflow)?" >&2; exit 1; }
done
mkdir -p "$linkdir"
ln -sfn "$tf/libtensorflow_cc.so.2" "$linkdir/libtensorflow.so"
ln -sfn "$tf/libtensorflow_framework.so.2" "$linkdir/libtensorflow_framework.so"
abs=$(cd "$linkdir" && pwd)
cat > "$linkdir/env.mk" <<MK
# written by scripts/tflink.sh: cgo flags for github.com/wamuir/graft against $wheel at $tf
export CGO_CFLAGS := -I$tf/include
export CGO_LDFLAGS := -L$abs -ltensorflow -ltensorflow_framework -Wl,-rpath,$tf
MK
# The same for a shell: `source .tflib/env.sh` before running go by hand.
cat > "$linkdir/env.sh" <<SH
export CGO_ENABLED=1
export CGO_CFLAGS="-I$tf/include"
export CGO_LDFLAGS="-L$abs -ltensorflow -ltensorflow_framework -Wl,-rpath,$tf"
SH
echo "tflink: graft will link $wheel: $tf/libtensorflow_cc.so.2 (C API) via $abs"
[ "$cuda" = True ] || exit 0

# The CUDA build dlopens the CUDA libraries at run time, searching libtensorflow_cc.so.2's own
# RUNPATH ($ORIGIN/../nvidia/<lib>/lib: the nvidia-* wheels of tensorflow[and-cuda]) and then
# the system's (ld.so.cache: a CUDA install, as in the official image). An rpath in our binary
# would not help: glibc searches the RUNPATH of the library that calls dlopen. So this only
# checks that TF will find them, the way it finds them from Python.
runpath=$(readelf -d "$tf/libtensorflow_cc.so.2" 2>/dev/null | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p' || true)
IFS=: read -ra dirs <<< "${runpath//\$ORIGIN/$tf}"
missing=()
for lib in libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcufft.so.11 libcusolver.so.11 libcusparse.so.12 libcudnn.so.9; do
  found=
  for d in "${dirs[@]}"; do [ -e "$d/$lib" ] && { found=$d; break; }; done
  [ -n "$found" ] || /sbin/ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$lib " || missing+=("$lib")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tflink: warning: CUDA build, but TensorFlow will not find ${missing[*]} (not beside the wheel, not in ld.so.cache):" \
       "install them (TF_PACKAGE='tensorflow[and-cuda]==2.18.1' brings them from PyPI) or name their directories in LD_LIBRARY_PATH" >&2
else
  echo "tflink: CUDA build: TensorFlow finds the CUDA and cuDNN libraries through its own RUNPATH or ld.so.cache (no LD_LIBRARY_PATH needed)"
fi
