#!/usr/bin/env bash
# Builds PyCUDA into a CPython 3.12 x86-64 wheel HERE, on a machine with nvcc but no GPU, so
# that a GPU machine (Python 3.12, no network) installs it in seconds instead of compiling
# for minutes of its device time. Run from the repository root after
# `bash ../shared/gpu/fetch-pycuda.sh` (which fills .gpu/ with PyCUDA's source); the wheel
# lands in .gpu/ and benchmarks/run-on-gpu.sh installs it when it finds it.
#
# No driver here, so the link gets an empty stand-in libcuda.so whose SONAME is
# libcuda.so.1: the wheel then loads the real driver library on the GPU machine.
set -euo pipefail
python=${PYTHON312:-python3.12}
"$python" -c "import sys; assert sys.version_info[:2] == (3, 12), sys.version" || {
    echo "needs Python 3.12 (set PYTHON312=/path/to/python3.12)"; exit 2; }
work=$(mktemp -d)
nvcc_path=$(readlink -f "$(command -v nvcc)")
cuda_root=$(dirname "$(dirname "$nvcc_path")")
mkdir -p "$work/stub"
echo "" >"$work/stub/empty.c"
gcc -shared -Wl,-soname,libcuda.so.1 -o "$work/stub/libcuda.so" "$work/stub/empty.c"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "numpy>=2,<2.5" setuptools wheel pytools mako platformdirs
tar xzf .gpu/pycuda-*.tar.gz -C "$work"
cd "$work"/pycuda-*
"$work/venv/bin/python" configure.py --cuda-root="$cuda_root" --no-cuda-enable-curand >/dev/null
LIBRARY_PATH="$work/stub" "$work/venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$OLDPWD/.gpu" .
cd "$OLDPWD"
ls -la .gpu/pycuda-*.whl
readelf -d "$work"/pycuda-*/build/lib*/pycuda/_driver*.so | grep NEEDED | grep cuda
rm -rf "$work"
