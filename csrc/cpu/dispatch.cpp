// Which ISA path runs, and on how many threads.
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "pydl/isa.h"
#include "pydl/parallel.h"

namespace pydl {
namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::generic;
}

Isa parse(const char* name) {
  if (!std::strcmp(name, "generic")) return Isa::generic;
  if (!std::strcmp(name, "avx2")) return Isa::avx2;
  if (!std::strcmp(name, "avx512")) return Isa::avx512;
  throw std::invalid_argument(std::string("unknown ISA '") + name + "' (expected generic, avx2 or avx512)");
}

Isa initial() {
  const char* env = std::getenv("PYDL_ISA");
  if (env && *env) {
    Isa want = parse(env);
    if (static_cast<int>(want) <= static_cast<int>(best_supported_isa())) return want;
  }
  return best_supported_isa();
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(initial())};
  return isa;
}

int initial_threads() {
  const char* env = std::getenv("PYDL_NUM_THREADS");
  if (env && std::atoi(env) > 0) return std::atoi(env);
  return omp_get_max_threads();  // honours OMP_NUM_THREADS, else the cores we may use
}

std::atomic<int>& threads() {
  static std::atomic<int> n{initial_threads()};
  return n;
}

}  // namespace

Isa best_supported_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

void set_active_isa(const char* name) {
  Isa want = parse(name);
  if (static_cast<int>(want) > static_cast<int>(best_supported_isa()))
    throw std::invalid_argument(std::string("this CPU does not support the ") + name + " path (best: " +
                                isa_name(best_supported_isa()) + ")");
  active().store(static_cast<int>(want));
}

int num_threads() { return threads().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  threads().store(n);
}

}  // namespace pydl
