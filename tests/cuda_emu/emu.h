// A minimal CPU stand-in for the CUDA features kernels/*.cu use, to check their indexing,
// bounds and barriers on machines without a GPU: each block runs as blockDim OS threads
// that meet at a std::barrier for __syncthreads(); blocks run one after another, so
// __shared__ arrays can be function statics. The warp-wide primitives, __ballot_sync and the
// binary tensor-core product (emu_bmma_and_popc, after PTX's mma.m16n8k256 .b1 .and.popc),
// have the threads of a warp meet at a barrier of their own to swap values. No timing meaning.
#pragma once
#include <algorithm>
#include <barrier>
#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) ulonglong2 {
    unsigned long long x, y;
};

inline thread_local dim3 threadIdx;
inline thread_local unsigned emu_thread;  // linear thread index in the block
inline dim3 blockIdx, blockDim, gridDim;
inline std::barrier<>* emu_barrier = nullptr;
inline std::vector<std::barrier<>*> emu_warp_barriers;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define CUDA_EMU 1

inline void __syncthreads() { emu_barrier->arrive_and_wait(); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
using std::min;

// __ballot_sync(mask, pred): bit l of the result is lane l's pred, for the lanes in mask.
inline unsigned emu_votes[32][32];  // [warp][lane]
inline unsigned __ballot_sync(unsigned mask, bool pred) {
    const unsigned warp = emu_thread / 32, lane = emu_thread % 32;
    const unsigned lanes = std::min(32u, blockDim.x * blockDim.y * blockDim.z - 32 * warp);
    emu_votes[warp][lane] = pred;
    emu_warp_barriers[warp]->arrive_and_wait();  // every lane has voted
    unsigned result = 0;
    for (unsigned l = 0; l < lanes; ++l)
        result |= (emu_votes[warp][l] & (mask >> l) & 1u) << l;
    emu_warp_barriers[warp]->arrive_and_wait();  // every lane has counted
    return result;
}

// mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc: lane l = 4 g + t holds
// a0 (row g, bits 32t..), a1 (row g+8, bits 32t..), a2 (row g, bits 128+32t..), a3 (row g+8,
// bits 128+32t..); b0 (column g, bits 32t..), b1 (column g, bits 128+32t..); c0, c1 (row g,
// columns 2t, 2t+1), c2, c3 (row g+8, the same columns). D = C + popc(A AND B) per element.
inline unsigned emu_frag_a[32][32][4], emu_frag_b[32][32][2];  // [warp][lane][register]
inline void emu_bmma_and_popc(int c[4], const unsigned a[4], const unsigned b[2]) {
    const unsigned warp = emu_thread / 32, lane = emu_thread % 32, g = lane / 4, t = lane % 4;
    std::copy(a, a + 4, emu_frag_a[warp][lane]);
    std::copy(b, b + 2, emu_frag_b[warp][lane]);
    emu_warp_barriers[warp]->arrive_and_wait();  // every lane's fragments are in
    for (int r = 0; r < 4; ++r) {
        const unsigned row = g + 8 * (r / 2), col = 2 * t + r % 2;
        for (unsigned k = 0; k < 8; ++k) {  // the 8 32-bit pieces of the 256 bits
            const unsigned piece = k % 4, high = k / 4;  // lane 4 * . + piece holds it
            const unsigned a_reg = (row >= 8) + 2 * high;
            const unsigned a_bits = emu_frag_a[warp][4 * (row % 8) + piece][a_reg];
            const unsigned b_bits = emu_frag_b[warp][4 * col + piece][high];
            c[r] += __builtin_popcount(a_bits & b_bits);
        }
    }
    emu_warp_barriers[warp]->arrive_and_wait();  // every lane has read them
}

template <class Kernel, class... Args>
void emu_launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    gridDim = grid;
    blockDim = block;
    const unsigned n = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                blockIdx = dim3(bx, by, bz);
                std::barrier<> bar(n);
                emu_barrier = &bar;
                std::deque<std::barrier<>> warps;  // a partial last warp meets with fewer
                emu_warp_barriers.clear();
                for (unsigned w = 0; w < (n + 31) / 32; ++w)
                    emu_warp_barriers.push_back(&warps.emplace_back(std::min(32u, n - 32 * w)));
                std::vector<std::thread> threads;
                for (unsigned t = 0; t < n; ++t)
                    threads.emplace_back([&, t] {
                        threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                        emu_thread = t;
                        kernel(args...);
                    });
                for (auto& th : threads) th.join();
            }
}
