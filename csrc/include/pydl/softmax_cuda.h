// softmax family on the GPU (csrc/cuda/softmax.cu): the launchers, on contiguous
// row-major (N, C) device arrays, launched on the given stream. Shapes, dtypes and target
// ranges are checked by the Python side (pydl/kernels/cuda/softmax.py).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// softmax (log = false) or log_softmax (log = true) of each row; and their backward from
// the forward's output y.
template <typename T>
void softmax_forward(const T* x, T* y, int64_t N, int64_t C, bool log, cudaStream_t stream);
template <typename T>
void softmax_backward(const T* grad_y, const T* y, T* grad_x, int64_t N, int64_t C, bool log, cudaStream_t stream);

template <typename T>
struct CrossEntropyCudaArgs {
  int64_t N, C;
  const T* logits;        // (N, C)
  const int64_t* target;  // (N,): in [0, C) or == ignore_index
  const T* weight;        // (C,) class weights, or null for all ones
  const double* sums;     // device (2,): S_w = sum of the class weights (C without), the mean's denominator
  bool mean;              // reduction 'mean': the gradient is divided by sums[1]
  int64_t ignore_index;
  double label_smoothing;
  T* grad;                // (N, C) out: d loss / d logits for grad_loss = 1
  double* row_loss;       // (N,) out: each row's weighted loss (0 on ignored rows)
};

template <typename T>
void cross_entropy(const CrossEntropyCudaArgs<T>& a, cudaStream_t stream);

// grad (N, C) and row_loss (N,) out; grad_scale = 1 / N for 'mean', else 1.
template <typename T>
void svm_loss(const T* scores, const int64_t* target, int64_t N, int64_t C, double margin, double grad_scale, T* grad,
              double* row_loss, cudaStream_t stream);

}  // namespace pydl::cuda
