// normalisation family on the GPU (csrc/cuda/norm.cu): the launchers, on contiguous
// device arrays, launched on the given stream. Shapes and dtypes are checked by the
// Python side (pydl/kernels/cuda/norm.py), which also allocates the workspaces.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

template <typename T>
struct BnForwardArgs {
  int64_t N, C, L;
  const T* x;                 // (N, C, L)
  T* y;                       // (N, C, L)
  T* running_mean;            // (C,) or null; updated in place in training
  T* running_var;             // (C,) or null
  const T* weight;            // (C,) or null
  const T* bias;              // (C,) or null
  bool training;
  double momentum, eps;
  T* save_mean;               // (C,) out
  T* save_invstd;             // (C,) out
  int S;                      // slices per channel of the statistics (training)
  T* workspace;               // 3 C S (training) + 4 C values
};

template <typename T>
struct BnBackwardArgs {
  int64_t N, C, L;
  const T* grad_out;          // (N, C, L)
  const T* x;                 // (N, C, L)
  const T* weight;            // (C,) or null
  const T* save_mean;         // (C,)
  const T* save_invstd;       // (C,)
  bool training;
  T* grad_input;              // (N, C, L) or null
  T* grad_weight;             // (C,) or null
  T* grad_bias;               // (C,) or null
  int S;                      // slices per channel of the sums
  T* workspace;               // 2 C S + 4 C values
};

template <typename T>
void batch_norm_forward(const BnForwardArgs<T>& a, cudaStream_t stream);
template <typename T>
void batch_norm_backward(const BnBackwardArgs<T>& a, cudaStream_t stream);

// x, y: (R, D); w, b: (D,) or null; mean, rstd: (R,) out.
template <typename T>
void layer_norm_forward(const T* x, T* y, int64_t R, int64_t D, const T* w, const T* b, double eps, T* mean, T* rstd,
                        cudaStream_t stream);
// dx (R, D), grad_w, grad_b (D,): each may be null; workspace: 2 S D values (S row slices).
template <typename T>
void layer_norm_backward(const T* dy, const T* x, int64_t R, int64_t D, const T* mean, const T* rstd, const T* w,
                         T* dx, T* grad_w, T* grad_b, T* workspace, int S, cudaStream_t stream);

// x, y: (N, C, L); w, b: (C,) or null; mean, rstd: (N, G) out.
template <typename T>
void group_norm_forward(const T* x, T* y, int64_t N, int64_t C, int64_t L, int64_t G, const T* w, const T* b,
                        double eps, T* mean, T* rstd, cudaStream_t stream);
// dx (N, C, L), grad_w, grad_b (C,): each may be null; workspace: 2 N C values.
template <typename T>
void group_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, int64_t G, const T* mean,
                         const T* rstd, const T* w, T* dx, T* grad_w, T* grad_b, T* workspace, cudaStream_t stream);

}  // namespace pydl::cuda
