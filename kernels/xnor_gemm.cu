/*
 * XNOR-popcount GEMM (Hubara et al., "Binarized Neural Networks", NIPS 2016):
 *
 *     C[m][n] = K - 2 * popcount(A[m] XOR B[n])          (the exact ±1 product A·Bᵀ)
 *
 * A is M x W and B is N x W 64-bit words, row-major, packed along the reduction axis by
 * analysis.xnor.pack_bits (bit j % 64 of word j / 64 is 1 for +1); K is the number of
 * valid bits per row, W = ceil(K / 64). Bits past K in the last word are masked off as
 * they are loaded, so whatever the padding holds counts nothing. C is M x N int32,
 * row-major. Two kernels compute it, both on 128 x 128 tiles of C with 256 threads:
 *
 *   xnor_gemm     on the CUDA cores: XOR and popc, for every GPU;
 *   xnor_gemm_tc  on the binary tensor cores (compute capability 8.0 and later), which
 *                 offer AND + popc only (Hopper dropped XOR). For bits x (1 = +1) with
 *                 row popcounts pa = popc(a), pb = popc(b):
 *                     a·b = K - 2·pa - 2·pb + 4·popc(a AND b).
 * Every count (accumulators, pa, pb) is at most K < 2^31, and the epilogue (xnor_dot) keeps
 * every intermediate in [-K, K]: 2·popc or 4·popc(a AND b) alone would overflow int.
 *
 * Rows, columns and words outside M, N, W load as 0 and are never stored: any M, N, W.
 * Launch either: grid (ceil(N / XNOR_BN), ceil(M / XNOR_BM)), block (XNOR_THREADS).
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

/* The bits of the last word (index W - 1) that lie below K; all ones when 64 divides K. */
__device__ __forceinline__ xnor_word xnor_tail_mask(int K)
{
    return (K % 64) ? (1ULL << (K % 64)) - 1ULL : ~0ULL;
}

/* Rows r0 + tid / 2, words k0 + (tid % 2) * 4 .. + 3 of P (rows x W) into r[0..3],
 * 0 outside the matrix, the last word masked by `tail`. */
__device__ __forceinline__ void xnor_load(const xnor_word* __restrict__ P, int rows, int W,
                                          int r0, int k0, int tid, bool wide, xnor_word tail,
                                          xnor_word r[4])
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
#pragma unroll
    for (int j = 0; j < 4; ++j)
        if (col + j == W - 1)
            r[j] &= tail;
}

/* a·b from the d bits where a and b differ: K - 2d, as (K - d) - d (in [0, K], then [-K, K]);
 * 2 * d would overflow int once d > 2^30 */
__device__ __forceinline__ int xnor_dot(int K, int d)
{
    return K - d - d;
}

/* The same from popcounts pa, pb and c = popc(a AND b) (tensor cores): a and b differ on
 * pa - c bits (a only) plus pb - c (b only), each term and their sum within [0, K]. */
__device__ __forceinline__ int xnor_dot_and(int K, int pa, int pb, int c)
{
    return xnor_dot(K, (pa - c) + (pb - c));
}

/* 16-byte loads need every row start 16-byte aligned: W even and an aligned base */
__device__ __forceinline__ bool xnor_wide(const xnor_word* P, int W)
{
    return (W % 2 == 0) && (((unsigned long long)P & 15ULL) == 0ULL);
}

/* ------------------------------------------------------------------ CUDA cores: XOR + popc
 *
 * The block streams the reduction axis through shared memory 8 words (512 bits) at a time,
 * double-buffered (the next stage is fetched into registers while this one is counted);
 * each thread keeps an 8 x 8 sub-tile of counts in registers (rows ty + 16 i, columns
 * tx + 16 j: conflict-free shared reads). Launch bounds ask for 2 resident blocks per SM
 * (at most 128 registers per thread).
 */

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
    const bool wide_a = xnor_wide(A, W), wide_b = xnor_wide(B, W);
    const xnor_word tail = xnor_tail_mask(K);

    unsigned int acc[XNOR_TM][XNOR_TN];
#pragma unroll
    for (int i = 0; i < XNOR_TM; ++i)
#pragma unroll
        for (int j = 0; j < XNOR_TN; ++j)
            acc[i][j] = 0U;

    xnor_word ra[4], rb[4];
    const int stages = (W + XNOR_BK - 1) / XNOR_BK;
    xnor_load(A, M, W, m0, 0, tid, wide_a, tail, ra);
    xnor_load(B, N, W, n0, 0, tid, wide_b, tail, rb);
    xnor_store(As[0], tid, ra);
    xnor_store(Bs[0], tid, rb);
    __syncthreads();

    for (int s = 0; s < stages; ++s) {
        const int cur = s & 1;
        const bool more = s + 1 < stages;
        if (more) { /* fetch the next stage into registers while this one is counted */
            xnor_load(A, M, W, m0, (s + 1) * XNOR_BK, tid, wide_a, tail, ra);
            xnor_load(B, N, W, n0, (s + 1) * XNOR_BK, tid, wide_b, tail, rb);
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
                    C[(long long)m * N + n] = xnor_dot(K, (int)acc[i][j]);
            }
        }
    }
}

/* ------------------------------------------------------------------ tensor cores: AND + popc
 *
 * mma.sync m16n8k256 on b1 operands: one warp multiplies a 16 x 256-bit tile of A by an
 * 8 x 256-bit tile of B (both rows along K) and adds popc(a AND b) to a 16 x 8 int32 tile.
 * Lane l = 4 g + t (g = l / 4, t = l % 4) holds, per the PTX ISA's fragment layout,
 *     A: a0 = rows g,   bits 32t .. 32t+31     a1 = rows g+8, same bits
 *        a2 = rows g,   bits 128+32t ..        a3 = rows g+8, same bits
 *     B: b0 = column g, bits 32t .. 32t+31     b1 = column g, bits 128+32t ..
 *     C: c0, c1 = row g, columns 2t, 2t+1;     c2, c3 = row g+8, the same columns.
 * Only the pairing of A's and B's bits matters for the sum, so each lane feeds the low and
 * high halves of one 64-bit word (word t of the 256-bit slice) as a0/a2 and b0/b1: one
 * 8-byte shared load per row instead of two 4-byte ones.
 *
 * The block (8 warps, 2 x 4, each a 64 x 32 tile of C: 4 x 4 mma tiles, 64 accumulators)
 * stages A and B row-major through shared memory 8 words (two slices) at a time,
 * double-buffered like xnor_gemm. A row's 8 words take 64 bytes, so rows r and r + 2 would
 * share banks; rows with bit 1 set swap their two 4-word halves (word w at w ^ 4), which
 * makes the fragment reads of each half-warp (4 rows x 4 words) conflict-free. The threads
 * that load a row also add up its popcount, which the epilogue needs for pa and pb.
 */

#define XNOR_TC_WARPS_N 4 /* warps along N; XNOR_THREADS / 32 / XNOR_TC_WARPS_N along M */
#define XNOR_TC_WM 64     /* rows of C per warp: 4 mma tiles of 16 */
#define XNOR_TC_WN 32     /* columns of C per warp: 4 mma tiles of 8 */

/* word w of row `row` in a row-major 128 x 8-word stage, halves swapped on rows 2, 3, 6, 7.. */
__device__ __forceinline__ int xnor_tc_slot(int row, int w)
{
    return row * XNOR_BK + (w ^ (((row >> 1) & 1) << 2));
}

__device__ __forceinline__ void xnor_tc_store(xnor_word* S, int tid, const xnor_word r[4])
{
    const int row = tid / 2;
    const int col = (tid % 2) * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j)
        S[xnor_tc_slot(row, col + j)] = r[j];
}

/* popcount of the 4 words one thread loads: its share of a row's pa or pb */
__device__ __forceinline__ int xnor_popc4(const xnor_word r[4])
{
    return __popcll(r[0]) + __popcll(r[1]) + __popcll(r[2]) + __popcll(r[3]);
}

/* c[0..3] += popc(A AND B) on one m16n8k256 tile (fragments as laid out above). */
__device__ __forceinline__ void xnor_bmma_and(int c[4], const unsigned a[4], const unsigned b[2])
{
#if defined(CUDA_EMU)
    emu_bmma_and_popc(c, a, b); /* tests/cuda_emu: the same warp-wide product on the CPU */
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    __trap(); /* no binary tensor cores before 8.0: the launcher uses xnor_gemm there */
#endif
}

/* one resident block per SM: the 64 accumulators and fragments take about 164 registers
 * a thread, and capping them at 128 for two blocks spills to local memory */
extern "C" __global__ void __launch_bounds__(XNOR_THREADS, 1)
xnor_gemm_tc(const xnor_word* __restrict__ A, const xnor_word* __restrict__ B,
             int* __restrict__ C, int M, int N, int W, int K)
{
    __shared__ xnor_word As[2][XNOR_BM * XNOR_BK];
    __shared__ xnor_word Bs[2][XNOR_BN * XNOR_BK];
    __shared__ int pop_a[XNOR_THREADS], pop_b[XNOR_THREADS];

    const int tid = threadIdx.x;
    const int lane = tid % 32, g = lane / 4, t = lane % 4;
    const int wm = (tid / 32) / XNOR_TC_WARPS_N * XNOR_TC_WM; /* the warp's tile in the block */
    const int wn = (tid / 32) % XNOR_TC_WARPS_N * XNOR_TC_WN;
    const int m0 = blockIdx.y * XNOR_BM;
    const int n0 = blockIdx.x * XNOR_BN;
    const bool wide_a = xnor_wide(A, W), wide_b = xnor_wide(B, W);
    const xnor_word tail = xnor_tail_mask(K);

    int acc[XNOR_TC_WM / 16][XNOR_TC_WN / 8][4];
#pragma unroll
    for (int i = 0; i < XNOR_TC_WM / 16; ++i)
#pragma unroll
        for (int j = 0; j < XNOR_TC_WN / 8; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r)
                acc[i][j][r] = 0;
    int count_a = 0, count_b = 0; /* popcounts of the words this thread loads */

    xnor_word ra[4], rb[4];
    const int stages = (W + XNOR_BK - 1) / XNOR_BK;
    xnor_load(A, M, W, m0, 0, tid, wide_a, tail, ra);
    xnor_load(B, N, W, n0, 0, tid, wide_b, tail, rb);
    xnor_tc_store(As[0], tid, ra);
    xnor_tc_store(Bs[0], tid, rb);
    count_a += xnor_popc4(ra);
    count_b += xnor_popc4(rb);
    __syncthreads();

    for (int s = 0; s < stages; ++s) {
        const int cur = s & 1;
        const bool more = s + 1 < stages;
        if (more) {
            xnor_load(A, M, W, m0, (s + 1) * XNOR_BK, tid, wide_a, tail, ra);
            xnor_load(B, N, W, n0, (s + 1) * XNOR_BK, tid, wide_b, tail, rb);
        }
#pragma unroll
        for (int slice = 0; slice < XNOR_BK / 4; ++slice) {
            const int w = 4 * slice + t; /* this lane's word of the 256-bit slice */
            unsigned b[XNOR_TC_WN / 8][2];
#pragma unroll
            for (int j = 0; j < XNOR_TC_WN / 8; ++j) {
                const xnor_word v = Bs[cur][xnor_tc_slot(wn + 8 * j + g, w)];
                b[j][0] = (unsigned)v;
                b[j][1] = (unsigned)(v >> 32);
            }
#pragma unroll
            for (int i = 0; i < XNOR_TC_WM / 16; ++i) {
                const xnor_word lo = As[cur][xnor_tc_slot(wm + 16 * i + g, w)];
                const xnor_word hi = As[cur][xnor_tc_slot(wm + 16 * i + g + 8, w)];
                const unsigned a[4] = {(unsigned)lo, (unsigned)hi, (unsigned)(lo >> 32),
                                       (unsigned)(hi >> 32)};
#pragma unroll
                for (int j = 0; j < XNOR_TC_WN / 8; ++j)
                    xnor_bmma_and(acc[i][j], a, b[j]);
            }
        }
        if (more) {
            xnor_tc_store(As[cur ^ 1], tid, ra);
            xnor_tc_store(Bs[cur ^ 1], tid, rb);
            count_a += xnor_popc4(ra);
            count_b += xnor_popc4(rb);
        }
        __syncthreads();
    }

    /* row r of the block was loaded by threads 2r and 2r + 1 */
    pop_a[tid] = count_a;
    pop_b[tid] = count_b;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < XNOR_TC_WM / 16; ++i) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int row = wm + 16 * i + g + 8 * half;
            const int m = m0 + row;
            if (m >= M)
                continue;
            const int pa = pop_a[2 * row] + pop_a[2 * row + 1];
#pragma unroll
            for (int j = 0; j < XNOR_TC_WN / 8; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int col = wn + 8 * j + 2 * t + e;
                    const int n = n0 + col;
                    if (n < N) {
                        const int pb = pop_b[2 * col] + pop_b[2 * col + 1];
                        C[(long long)m * N + n] = xnor_dot_and(K, pa, pb, acc[i][j][2 * half + e]);
                    }
                }
            }
        }
    }
}
