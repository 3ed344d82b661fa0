// Runs one kernel of kernels/*.cu on the CPU emulator: `main KERNEL sizes...`, operands as
// raw little-endian arrays on stdin, the output array on stdout (see tests/test_xnor_kernels.py).
#include "emu.h"
#include "../../kernels/xnor_gemm.cu"
#include "../../kernels/baseline_gemm.cu"
#include "../../kernels/pack.cu"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

// Buffers of exactly the elements a kernel may touch (plus `extra`, for the misaligned GEMM
// operands), 16-byte aligned (cudaMalloc's are 256): a build with AddressSanitizer then traps any read
// or write past them (a row M, a word W, a warp past R x W), which the outputs alone never show.
template <class T> struct Aligned16 {
    using value_type = T;
    Aligned16() = default;
    template <class U> Aligned16(const Aligned16<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(16))); }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(16)); }
    template <class U> bool operator==(const Aligned16<U>&) const { return true; }
};
template <class T> using buffer = std::vector<T, Aligned16<T>>;
template <class T> buffer<T> read(size_t n, size_t extra = 0) {
    buffer<T> v(n + extra);
    if (n && fread(v.data(), sizeof(T), n, stdin) != n) { fprintf(stderr, "short input\n"); exit(2); }
    return v;
}
template <class T> void write(const buffer<T>& v, size_t n) { fwrite(v.data(), sizeof(T), n, stdout); }
static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }
// EMU_GRID / EMU_BLOCK ("x,y,z"), when set, replace the geometry below: the launch exactly as
// a launcher (analysis.xnor.gpu) chose it, so that tests check the launcher's geometry too.
static dim3 geometry(const char* name, dim3 fallback) {
    const char* v = getenv(name);
    if (!v) return fallback;
    unsigned x = 1, y = 1, z = 1;
    if (sscanf(v, "%u,%u,%u", &x, &y, &z) < 1) { fprintf(stderr, "bad %s=%s\n", name, v); exit(2); }
    return dim3(x, y, z);
}
template <class Kernel, class... Args> void launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    emu_launch(geometry("EMU_GRID", grid), geometry("EMU_BLOCK", block), kernel, args...);
}

int main(int argc, char** argv) {
    std::string k = argv[1];
    if (k == "xnor_gemm" || k == "xnor_gemm_tc") {  // M N W K misalign; A (M x W) B (N x W) u64;
                                                    // C (M x N) int32 prefilled
        int M = atoi(argv[2]), N = atoi(argv[3]), W = atoi(argv[4]), K = atoi(argv[5]);
        int off = atoi(argv[6]);  // 1: operands start 8 bytes past a 16-byte boundary
        auto A = read<unsigned long long>((size_t)M * W, off);
        auto B = read<unsigned long long>((size_t)N * W, off);
        auto C = read<int>((size_t)M * N);
        if (off) {
            std::memmove(A.data() + 1, A.data(), (size_t)M * W * 8);
            std::memmove(B.data() + 1, B.data(), (size_t)N * W * 8);
        }
        launch(dim3(cdiv(N, XNOR_BN), cdiv(M, XNOR_BM)), dim3(XNOR_THREADS), k == "xnor_gemm" ? xnor_gemm : xnor_gemm_tc,
                   (const unsigned long long*)A.data() + off, (const unsigned long long*)B.data() + off,
                   C.data(), M, N, W, K);
        write(C, (size_t)M * N);
    } else if (k == "baseline_gemm") {  // M N K; A (M x K), B (K x N), C (M x N) float32
        int M = atoi(argv[2]), N = atoi(argv[3]), K = atoi(argv[4]);
        auto A = read<float>((size_t)M * K);
        auto B = read<float>((size_t)K * N);
        auto C = read<float>((size_t)M * N);
        launch(dim3(cdiv(N, BASELINE_BX), cdiv(M, BASELINE_BY)), dim3(BASELINE_BX, BASELINE_BY),
                   baseline_gemm, (const float*)A.data(), (const float*)B.data(), C.data(), M, N, K);
        write(C, (size_t)M * N);
    } else if (k == "pack_signs") {  // R K W; X (R x K) float32; P (R x W) u64
        int R = atoi(argv[2]), K = atoi(argv[3]), W = atoi(argv[4]);
        auto X = read<float>((size_t)R * K);
        auto P = read<unsigned long long>((size_t)R * W);
        launch(dim3(cdiv((long long)R * W, PACK_THREADS / 32)), dim3(PACK_THREADS), pack_signs,
                   (const float*)X.data(), P.data(), R, K, W);
        write(P, (size_t)R * W);
    } else if (k == "threshold_pack") {  // R N W; Y (R x N) S (N) T (N) int32; P (R x W) u64
        int R = atoi(argv[2]), N = atoi(argv[3]), W = atoi(argv[4]);
        auto Y = read<int>((size_t)R * N);
        auto S = read<int>(N);
        auto T = read<int>(N);
        auto P = read<unsigned long long>((size_t)R * W);
        launch(dim3(cdiv((long long)R * W, PACK_THREADS / 32)), dim3(PACK_THREADS), threshold_pack,
                   (const int*)Y.data(), (const int*)S.data(), (const int*)T.data(), P.data(), R, N, W);
        write(P, (size_t)R * W);
    } else if (k == "xnor_dot" || k == "xnor_dot_and") {  // n; K, then d or pa pb c: (n) int32 each;
                                                          // C (n) int32: the GEMM epilogues alone
        size_t n = atol(argv[2]);
        std::vector<buffer<int>> v;
        for (int i = 0; i < (k == "xnor_dot" ? 2 : 4); ++i) v.push_back(read<int>(n));
        buffer<int> C(n);
        for (size_t i = 0; i < n; ++i)
            C[i] = k == "xnor_dot" ? xnor_dot(v[0][i], v[1][i]) : xnor_dot_and(v[0][i], v[1][i], v[2][i], v[3][i]);
        write(C, n);
    } else if (k == "emu_read_past") {  // n: reads element n of an n-element buffer, for the
                                        // test that the build traps out-of-bounds accesses
        size_t n = atol(argv[2]);
        auto v = read<int>(n);
        volatile int* p = v.data();
        printf("%d\n", p[n]);
    } else {
        fprintf(stderr, "unknown kernel %s\n", argv[1]);
        return 2;
    }
    return 0;
}
