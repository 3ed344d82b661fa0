#!/usr/bin/env bash
# Builds PyCUDA into a CPython 3.12 x86-64 wheel HERE, on a machine with nvcc but no GPU, so
# that a GPU machine (Python 3.12, no network) installs it in seconds instead of compiling
# for minutes of its device time. Run from the repository root after
# `bash ../shared/gpu/fetch-pycuda.sh` (which fills .gpu/ with PyCUDA's source); the wheel
# lands in .gpu/ and benchmarks/run-on-gpu.sh installs it when it finds it.
#
# No driver here, so the link gets an empty stand-in libcuda.so whose SONAME is
# libcuda.so.1, kept as NEEDED (--no-as-needed although the stub defines nothing): the
# wheel then loads the real driver library on the GPU machine.
set -euo pipefail
python=${PYTHON312:-python3.12}
"$python" -c "import sys; assert sys.version_info[:2] == (3, 12), sys.version" || {
    echo "needs Python 3.12 (set PYTHON312=/path/to/python3.12)"; exit 2; }
work=$(mktemp -d)
cuda_root=""  # the toolkit folder that holds include/cuda.h (nvcc may be a wrapper script)
for root in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")" /usr/local/cuda; do
    if [ -n "$root" ] && [ -f "$root/include/cuda.h" ]; then cuda_root=$root; break; fi
done
[ -n "$cuda_root" ] || { echo "no CUDA toolkit with include/cuda.h found (set CUDA_HOME)"; exit 2; }
mkdir -p "$work/stub"
echo "" >"$work/stub/empty.c"
gcc -shared -Wl,-soname,libcuda.so.1 -o "$work/stub/libcuda.so" "$work/stub/empty.c"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "numpy>=2,<2.5" setuptools wheel pytools mako platformdirs
tar xzf .gpu/pycuda-*.tar.gz -C "$work"
cd "$work"/pycuda-*
"$work/venv/bin/python" configure.py --cuda-root="$cuda_root" --no-cuda-enable-curand >/dev/null
LDFLAGS="-Wl,--no-as-needed" LIBRARY_PATH="$work/stub" "$work/venv/bin/pip" wheel -q --no-deps --no-build-isolation -w "$OLDPWD/.gpu" .
cd "$OLDPWD"
wheel=$(ls .gpu/pycuda-*-cp312-*.whl)
unzip -q -o "$wheel" 'pycuda/_driver*.so' -d "$work/check"
readelf -d "$work"/check/pycuda/_driver*.so | grep NEEDED | grep cuda  # libcuda.so.1, the driver's name
ls -la "$wheel"
rm -rf "$work"
