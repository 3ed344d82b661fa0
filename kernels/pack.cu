/*
 * Bit packing on the device, the layout of analysis.xnor.pack_bits: bit j % 64 of word
 * j / 64 of a row is 1 for +1 (x >= 0, so sign(0) = +1 and NaN gives 0), padding bits
 * past K are 0. R rows, K values, W = ceil(K / 64) words per row.
 *
 * One warp per output word: lane l tests values 64 w + l and 64 w + 32 + l, so the 32
 * lanes read 32 neighbouring values at a time (coalesced), and __ballot_sync gathers their
 * 32 answers into the low and the high half of the word.
 * Launch: block (PACK_THREADS), grid (ceil(R * W / (PACK_THREADS / 32))).
 */

#define PACK_THREADS 256

typedef unsigned long long pack_word;

/* The word this warp packs, or -1 past the last one (a whole warp leaves together). */
__device__ __forceinline__ long long pack_word_index(long long words)
{
    const long long idx = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    return idx < words ? idx : -1;
}

/* Lane 0 stores the 64 bits whose low half is `lo`'s votes and high half `hi`'s. */
__device__ __forceinline__ void pack_store(pack_word* P, long long idx, bool lo, bool hi)
{
    const unsigned low = __ballot_sync(0xffffffffu, lo);
    const unsigned high = __ballot_sync(0xffffffffu, hi);
    if (threadIdx.x % 32 == 0)
        P[idx] = ((pack_word)high << 32) | low;
}

/* P[r][w] = bits of X[r][64 w .. 64 w + 63] >= 0, X: R x K float32 */
extern "C" __global__ void pack_signs(const float* __restrict__ X, pack_word* __restrict__ P,
                                      int R, int K, int W)
{
    const long long idx = pack_word_index((long long)R * W);
    if (idx < 0)
        return;
    const int r = (int)(idx / W), j = (int)(idx % W) * 64 + threadIdx.x % 32;
    const float* x = X + (long long)r * K;
    pack_store(P, idx, j < K && x[j] >= 0.0f, j + 32 < K && x[j + 32] >= 0.0f);
}

/*
 * Batch-norm + sign folded into an integer threshold (analysis.xnor.export_packed):
 * bit j of row r is 1 where S[j] * Y[r][j] >= T[j], S[j] = +1 or -1 (the sign of the BN
 * scale). Y: R x N int32 (the XNOR products of the previous layer), P: R x W words.
 */
__device__ __forceinline__ bool pack_fires(const int* y, const int* S, const int* T, int j, int N)
{
    return j < N && (long long)S[j] * y[j] >= T[j]; /* in 64 bits: -1 * INT_MIN overflows int */
}

extern "C" __global__ void threshold_pack(const int* __restrict__ Y, const int* __restrict__ S,
                                          const int* __restrict__ T, pack_word* __restrict__ P,
                                          int R, int N, int W)
{
    const long long idx = pack_word_index((long long)R * W);
    if (idx < 0)
        return;
    const int r = (int)(idx / W), j = (int)(idx % W) * 64 + threadIdx.x % 32;
    const int* y = Y + (long long)r * N;
    pack_store(P, idx, pack_fires(y, S, T, j, N), pack_fires(y, S, T, j + 32, N));
}
