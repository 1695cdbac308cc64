// softmax family: softmax, log_softmax, fused cross-entropy and the multiclass SVM
// hinge loss, over the last axis of a row-major (rows, cols) array.
//
// Dimension legend: N rows (the batch, or every leading axis flattened), C columns
// (classes). The kernels are in csrc/cpu/softmax_isa.cpp (compiled once per ISA), the
// argument checks and the Python binding in csrc/cpu/softmax.cpp.
#pragma once
#include <cstdint>

#include "pydl/isa.h"

#include "pydl/host_device.h"

namespace pydl {

enum class Reduction : int { mean = 0, sum = 1, none = 2 };

// One row's cross-entropy with label smoothing eps and class weights w (PyTorch's
// definition), from the row's shifted statistics (m = max_c z_c):
//   log_s   = log sum_c exp(z_c - m)                  (so lse = m + log_s)
//   zy      = z_y - m                                  (the target's shifted logit)
//   wsum_zm = sum_c w_c (z_c - m)                      (only needed when eps > 0)
//   loss = (1 - eps) w_y (lse - z_y) + eps / C * sum_c w_c (lse - z_c)
//        = (1 - eps) w_y (log_s - zy) + eps / C * (S_w log_s - wsum_zm),  S_w = sum_c w_c.
// Every term is a difference of a logit and its own row's max, so logits of 1e4 lose
// nothing to cancellation. Shared by the CPU and CUDA kernels.
PYDL_HOST_DEVICE inline double cross_entropy_row_loss(double log_s, double zy, double wsum_zm, double w_y,
                                                      double S_w, double eps, int64_t C) {
  double loss = (1.0 - eps) * w_y * (log_s - zy);
  if (eps != 0.0) loss += eps / static_cast<double>(C) * (S_w * log_s - wsum_zm);
  return loss;
}

// The same row's gradient (times scale: 1 / the mean's denominator, or 1), from
// e_c = exp(z_c - m) and s = sum_c e_c:
//   dL/dz_c = a e_c - b w_c - [c == t] d,
//   a = scale ((1 - eps) w_t + eps S_w / C) / s,  b = scale eps / C,  d = scale (1 - eps) w_t.
struct CrossEntropyGradCoeffs {
  double a, b, d;
};
PYDL_HOST_DEVICE inline CrossEntropyGradCoeffs cross_entropy_grad_coeffs(double scale, double eps, double w_t,
                                                                         double S_w, int64_t C, double s) {
  return {scale * ((1.0 - eps) * w_t + eps * S_w / static_cast<double>(C)) / s, scale * eps / static_cast<double>(C),
          scale * (1.0 - eps) * w_t};
}

template <typename T>
struct CrossEntropyArgs {
  int64_t N, C;
  const T* logits;        // (N, C)
  const int64_t* target;  // (N,): in [0, C) or == ignore_index (checked by the binding)
  const T* weight;        // (C,) class weights, or nullptr for all ones
  double weight_sum;      // S_w = sum_c weight[c] (C without weights)
  int64_t ignore_index;
  double label_smoothing;
  double grad_scale;      // folded into grad: 1 / sum of target weights (mean), else 1
  T* grad;                // (N, C) out: d loss / d logits for grad_loss = 1 (0 on ignored rows)
  double* row_loss;       // (N,) out: each row's weighted loss (0 on ignored rows)
  int threads;
};

template <typename T>
struct SvmArgs {
  int64_t N, C;
  const T* scores;        // (N, C)
  const int64_t* target;  // (N,): in [0, C) (checked by the binding)
  double margin;
  double grad_scale;      // 1 / N (mean), else 1
  T* grad;                // (N, C) out: d loss / d scores for grad_loss = 1
  double* row_loss;       // (N,) out
  int threads;
};

template <typename T>
struct SoftmaxKernelsT {
  void (*softmax_forward)(const T* x, T* y, int64_t N, int64_t C, int threads);
  void (*softmax_backward)(const T* grad_y, const T* y, T* grad_x, int64_t N, int64_t C, int threads);
  void (*log_softmax_forward)(const T* x, T* y, int64_t N, int64_t C, int threads);
  void (*log_softmax_backward)(const T* grad_y, const T* y, T* grad_x, int64_t N, int64_t C, int threads);
  void (*cross_entropy)(const CrossEntropyArgs<T>& a);
  void (*svm_loss)(const SvmArgs<T>& a);
  // x[i, :] *= scale * (row_scale ? row_scale[i] : 1), in place.
  void (*scale_rows)(T* x, int64_t N, int64_t C, const T* row_scale, T scale, int threads);
};

struct SoftmaxKernels {
  SoftmaxKernelsT<float> f32;
  SoftmaxKernelsT<double> f64;
};

PYDL_DECLARE_ISA_TABLE(SoftmaxKernels, softmax_kernels)

template <typename T>
const SoftmaxKernelsT<T>& pick_softmax() {
  if constexpr (sizeof(T) == 4) return pick_softmax_kernels().f32;
  else return pick_softmax_kernels().f64;
}

}  // namespace pydl
