// One checking macro for every CUDA runtime call: a failure becomes a C++ exception
// carrying the file, the line and CUDA's own message (pybind11 turns it into a Python
// RuntimeError). The library never exits or aborts.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define PYDL_CUDA_CHECK(call)                                                                   \
  do {                                                                                          \
    cudaError_t pydl_err_ = (call);                                                             \
    if (pydl_err_ != cudaSuccess)                                                               \
      throw std::runtime_error(std::string("CUDA error at ") + __FILE__ + ":" +                 \
                               std::to_string(__LINE__) + ": " + cudaGetErrorString(pydl_err_)); \
  } while (0)
