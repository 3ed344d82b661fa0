// A minimal CPU stand-in for the CUDA features kernels/*.cu use, to check their indexing,
// bounds and barriers on machines without a GPU: each block runs as blockDim OS threads
// that meet at a std::barrier for __syncthreads(); blocks run one after another, so
// __shared__ arrays can be function statics. No warp primitives, no timing meaning.
#pragma once
#include <algorithm>
#include <barrier>
#include <cstdint>
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
inline dim3 blockIdx, blockDim, gridDim;
inline std::barrier<>* emu_barrier = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

inline void __syncthreads() { emu_barrier->arrive_and_wait(); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
using std::min;

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
                std::vector<std::thread> threads;
                for (unsigned t = 0; t < n; ++t)
                    threads.emplace_back([&, t] {
                        threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
                        kernel(args...);
                    });
                for (auto& th : threads) th.join();
            }
}
