/*
 * XNOR-popcount GEMM (Hubara et al., "Binarized Neural Networks", NIPS 2016):
 *
 *     C[m][n] = K - 2 * popcount(A[m] XOR B[n])          (the exact ±1 product A·Bᵀ)
 *
 * A is M x W and B is N x W 64-bit words, row-major, packed along the reduction axis by
 * analysis.xnor.pack_bits (bit j % 64 of word j / 64 is 1 for +1); K is the number of
 * valid bits per row. Padding bits past K must be equal in A and B (pack_bits makes them
 * 0), so they XOR to 0 and count nothing. C is M x N int32, row-major.
 *
 * Tiling: a block of 256 threads computes a 128 x 128 tile of C; it streams the reduction
 * axis through shared memory 8 words (512 bits) at a time, double-buffered, with 16-byte
 * global loads where rows are 16-byte aligned; each thread keeps an 8 x 8 sub-tile of
 * counts in registers (rows ty + 16 i, columns tx + 16 j: conflict-free shared reads).
 * Rows, columns and words outside M, N, W load as 0 and are never stored: any M, N, W.
 * Launch bounds ask for 2 resident blocks per SM (at most 128 registers per thread).
 * Launch: grid (ceil(N / XNOR_BN), ceil(M / XNOR_BM)), block (XNOR_THREADS).
 */

#define XNOR_BM 128
#define XNOR_BN 128
#define XNOR_BK 8
#define XNOR_TM 8
#define XNOR_TN 8
#define XNOR_THREADS 256

/* each thread loads XNOR_LOAD words of A and as many of B per stage */
#define XNOR_LOAD ((XNOR_BM * XNOR_BK) / XNOR_THREADS)

typedef unsigned long long xnor_word;

/* Rows r0 + tid / 2, words k0 + (tid % 2) * 4 .. + 3 of P (rows x W) into r[0..3]. */
__device__ __forceinline__ void xnor_load(const xnor_word* __restrict__ P, int rows, int W,
                                          int r0, int k0, int tid, bool wide, xnor_word r[4])
{
    const int row = r0 + tid / 2;
    const int col = k0 + (tid % 2) * 4;
    if (row < rows && wide && col + 3 < W) {
        const ulonglong2* p = (const ulonglong2*)(P + (long long)row * W + col);
        const ulonglong2 v0 = p[0];
        const ulonglong2 v1 = p[1];
        r[0] = v0.x;
        r[1] = v0.y;
        r[2] = v1.x;
        r[3] = v1.y;
    } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
            r[j] = (row < rows && col + j < W) ? P[(long long)row * W + col + j] : 0ULL;
    }
}

/* Store what xnor_load fetched, transposed: S[word][row] of one BK x 128 stage. */
__device__ __forceinline__ void xnor_store(xnor_word* S, int tid, const xnor_word r[4])
{
    const int row = tid / 2;
    const int col = (tid % 2) * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j)
        S[(col + j) * XNOR_BM + row] = r[j];
}

extern "C" __global__ void __launch_bounds__(XNOR_THREADS, 2)
xnor_gemm(const xnor_word* __restrict__ A, const xnor_word* __restrict__ B,
          int* __restrict__ C, int M, int N, int W, int K)
{
    __shared__ xnor_word As[2][XNOR_BK * XNOR_BM];
    __shared__ xnor_word Bs[2][XNOR_BK * XNOR_BN];

    const int tid = threadIdx.x;
    const int tx = tid % (XNOR_BN / XNOR_TN);
    const int ty = tid / (XNOR_BN / XNOR_TN);
    const int m0 = blockIdx.y * XNOR_BM;
    const int n0 = blockIdx.x * XNOR_BN;
    /* 16-byte loads need every row start 16-byte aligned: W even and an aligned base */
    const bool wide_a = (W % 2 == 0) && (((unsigned long long)A & 15ULL) == 0ULL);
    const bool wide_b = (W % 2 == 0) && (((unsigned long long)B & 15ULL) == 0ULL);

    unsigned int acc[XNOR_TM][XNOR_TN];
#pragma unroll
    for (int i = 0; i < XNOR_TM; ++i)
#pragma unroll
        for (int j = 0; j < XNOR_TN; ++j)
            acc[i][j] = 0U;

    xnor_word ra[4], rb[4];
    const int stages = (W + XNOR_BK - 1) / XNOR_BK;
    xnor_load(A, M, W, m0, 0, tid, wide_a, ra);
    xnor_load(B, N, W, n0, 0, tid, wide_b, rb);
    xnor_store(As[0], tid, ra);
    xnor_store(Bs[0], tid, rb);
    __syncthreads();

    for (int s = 0; s < stages; ++s) {
        const int cur = s & 1;
        const bool more = s + 1 < stages;
        if (more) { /* fetch the next stage into registers while this one is counted */
            xnor_load(A, M, W, m0, (s + 1) * XNOR_BK, tid, wide_a, ra);
            xnor_load(B, N, W, n0, (s + 1) * XNOR_BK, tid, wide_b, rb);
        }
#pragma unroll 2
        for (int k = 0; k < XNOR_BK; ++k) {
            xnor_word b[XNOR_TN];
#pragma unroll
            for (int j = 0; j < XNOR_TN; ++j)
                b[j] = Bs[cur][k * XNOR_BN + tx + j * (XNOR_BN / XNOR_TN)];
#pragma unroll
            for (int i = 0; i < XNOR_TM; ++i) {
                const xnor_word a = As[cur][k * XNOR_BM + ty + i * (XNOR_BM / XNOR_TM)];
#pragma unroll
                for (int j = 0; j < XNOR_TN; ++j)
                    acc[i][j] += __popcll(a ^ b[j]);
            }
        }
        if (more) { /* the other buffer was last read before the previous barrier */
            xnor_store(As[cur ^ 1], tid, ra);
            xnor_store(Bs[cur ^ 1], tid, rb);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < XNOR_TM; ++i) {
        const int m = m0 + ty + i * (XNOR_BM / XNOR_TM);
        if (m < M) {
#pragma unroll
            for (int j = 0; j < XNOR_TN; ++j) {
                const int n = n0 + tx + j * (XNOR_BN / XNOR_TN);
                if (n < N)
                    C[(long long)m * N + n] = K - 2 * (int)acc[i][j];
            }
        }
    }
}
