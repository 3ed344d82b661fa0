/*
 * Bit packing on the device, the layout of analysis.xnor.pack_bits: bit j % 64 of word
 * j / 64 of a row is 1 for +1 (x >= 0, so sign(0) = +1 and NaN gives 0), padding bits
 * past K are 0. One thread per output word; R rows, K values, W = ceil(K / 64) words.
 * Launch: block (PACK_THREADS), grid (ceil(R * W / PACK_THREADS)).
 */

#define PACK_THREADS 256

typedef unsigned long long pack_word;

/* P[r][w] = bits of X[r][64 w .. 64 w + 63] >= 0, X: R x K float32 */
extern "C" __global__ void pack_signs(const float* __restrict__ X, pack_word* __restrict__ P,
                                      int R, int K, int W)
{
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)R * W)
        return;
    const int r = (int)(idx / W);
    const int w = (int)(idx % W);
    const float* x = X + (long long)r * K + (long long)w * 64;
    const int n = min(64, K - w * 64);
    pack_word word = 0ULL;
    for (int j = 0; j < n; ++j)
        word |= (pack_word)(x[j] >= 0.0f) << j;
    P[idx] = word;
}

/*
 * Batch-norm + sign folded into an integer threshold (analysis.xnor.export_packed):
 * bit j of row r is 1 where S[j] * Y[r][j] >= T[j], S[j] = +1 or -1 (the sign of the BN
 * scale). Y: R x N int32 (the XNOR products of the previous layer), P: R x W words.
 */
extern "C" __global__ void threshold_pack(const int* __restrict__ Y, const int* __restrict__ S,
                                          const int* __restrict__ T, pack_word* __restrict__ P,
                                          int R, int N, int W)
{
    const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long long)R * W)
        return;
    const int r = (int)(idx / W);
    const int w = (int)(idx % W);
    const int* y = Y + (long long)r * N;
    const int n = min(64, N - w * 64);
    pack_word word = 0ULL;
    for (int j = 0; j < n; ++j) {
        const int u = w * 64 + j;
        word |= (pack_word)(S[u] * y[u] >= T[u]) << j;
    }
    P[idx] = word;
}
