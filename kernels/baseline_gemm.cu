/*
 * The unoptimized float GEMM the BNN paper compares its XNOR kernel against:
 *
 *     C = A · B,    A: M x K,  B: K x N,  C: M x N,  float32, row-major.
 *
 * One thread per output element, no shared memory, no tiling: thread (m, n) walks the
 * reduction axis alone. Reads are coalesced (adjacent threads read adjacent columns of B
 * and the same element of A), so it is naive but not needlessly slow.
 * Launch: block (BASELINE_BX, BASELINE_BY), grid (ceil(N / BX), ceil(M / BY)).
 */

#define BASELINE_BX 16
#define BASELINE_BY 16

extern "C" __global__ void baseline_gemm(const float* __restrict__ A, const float* __restrict__ B,
                                         float* __restrict__ C, int M, int N, int K)
{
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    const int m = blockIdx.y * blockDim.y + threadIdx.y;
    if (m >= M || n >= N)
        return;
    const float* a = A + (long long)m * K;
    float s = 0.0f;
    for (int k = 0; k < K; ++k)
        s += a[k] * B[(long long)k * N + n];
    C[(long long)m * N + n] = s;
}
