// Run-time ISA dispatch.
//
// Sources listed in CMake's PYDL_ISA_SOURCES are compiled three times: for the x86-64
// baseline ("generic": SSE2), for AVX2+FMA and for AVX-512. Each compilation defines
// PYDL_ISA_NAME and wraps its code in `namespace pydl::PYDL_ISA_NS` (isa_generic,
// isa_avx2, isa_avx512), so the three copies link side by side. Each kernel family
// declares a small table of function pointers; PYDL_ISA_PICK returns the copy for the
// ISA picked at import time (the best the CPU supports, or a lower one requested through
// the PYDL_ISA environment variable or pydl._C._set_isa, which the tests use to check
// every path against the reference).
#pragma once

#define PYDL_CONCAT_(a, b) a##b
#define PYDL_CONCAT(a, b) PYDL_CONCAT_(a, b)
#define PYDL_ISA_NS PYDL_CONCAT(isa_, PYDL_ISA_NAME)

namespace pydl {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

Isa active_isa();               // the ISA every kernel call uses now
Isa best_supported_isa();       // what this CPU (and this build) can run
const char* isa_name(Isa isa);  // "generic", "avx2", "avx512"
// Select a path; throws std::invalid_argument for an unknown name or one the CPU lacks.
void set_active_isa(const char* name);

}  // namespace pydl

// Declares `table` in each ISA namespace and defines pick_<table>() returning the active one.
#define PYDL_DECLARE_ISA_TABLE(Type, table)                                     \
  namespace isa_generic { extern const Type table; }                            \
  namespace isa_avx2 { extern const Type table; }                               \
  namespace isa_avx512 { extern const Type table; }                             \
  inline const Type& pick_##table() {                                           \
    switch (active_isa()) {                                                     \
      case Isa::avx512: return isa_avx512::table;                               \
      case Isa::avx2: return isa_avx2::table;                                   \
      default: return isa_generic::table;                                       \
    }                                                                           \
  }
