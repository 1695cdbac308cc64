// Workspace that outlives a call: a 64-byte aligned buffer owned by the calling thread,
// grown on demand and reused by later calls (fresh pages cost ~2 us per 4 KiB here, so
// kernels must not allocate per call). One buffer per (T, Slot) and translation unit;
// growing drops the old contents. Throws std::bad_alloc: call it outside OpenMP regions,
// or carry the exception out of the region.
//
// Internal linkage on purpose: the *_isa.cpp files are compiled once per ISA, and an
// inline function shared between them could be merged by the linker into the AVX-512
// copy and then run on a CPU without AVX-512.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace pydl {
namespace {

template <typename T, int Slot>
T* thread_scratch(size_t n) {
  struct Buffer {
    std::unique_ptr<T[], void (*)(void*)> data{nullptr, std::free};
    size_t cap = 0;
  };
  thread_local Buffer buf;
  if (n > buf.cap) {
    buf.data.reset();  // free first: the old and the new buffer are never both held
    void* p = std::aligned_alloc(64, ((std::max<size_t>(n, 1) * sizeof(T) + 63) / 64) * 64);
    if (!p) throw std::bad_alloc();
    buf.data = std::unique_ptr<T[], void (*)(void*)>(static_cast<T*>(p), std::free);
    buf.cap = n;
  }
  return buf.data.get();
}

}  // namespace
}  // namespace pydl
