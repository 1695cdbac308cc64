// normalisation family: batch norm, layer norm, group norm (instance norm is group norm
// with one channel per group). The per-run primitives below are compiled once per ISA
// (csrc/cpu/norm_isa.cpp); csrc/cpu/norm.cpp arranges them into the three layers and
// holds the bindings.
//
// Every layer normalises a set of M values with its mean and biased variance,
//   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),  y = xhat * w + b,
// and its backward, with g = dy * w, is
//   dx = rstd * (g - sum(g) / M - xhat * sum(g * xhat) / M).
// Statistics are sums in double (a float32 channel of N64 x 56 x 56 has 200K values),
// of values shifted by one of the set's own elements, so that a mean far from zero costs
// no precision in var = E[(x - K)^2] - E[x - K]^2.
//
// Legend: n = the length of one contiguous run (a plane of L = H * W values for batch and
// group norm, a row of D values for layer norm, or a row of columns for the "col" forms).
#pragma once
#include <cmath>
#include <cstdint>

#include "pydl/isa.h"

#include "pydl/host_device.h"

namespace pydl {

// Mean and biased variance of M values from their shifted sums s = sum(x - K) and
// q = sum((x - K)^2); the variance is clamped at 0 against rounding.
struct MeanVar {
  double mean, var;
};
PYDL_HOST_DEVICE inline MeanVar mean_var_from_shifted(double s, double q, double K, double M) {
  const double d = s / M;
  double var = q / M - d * d;
  return {K + d, var > 0.0 ? var : 0.0};
}

// The running-statistics update of batch norm in training (PyTorch's): the exponential
// average with momentum, of the mean and of the UNBIASED variance var * M / (M - 1).
PYDL_HOST_DEVICE inline void update_running(double& running_mean, double& running_var, double mean, double var,
                                            double M, double momentum) {
  running_mean = (1.0 - momentum) * running_mean + momentum * mean;
  running_var = (1.0 - momentum) * running_var + momentum * var * M / (M - 1.0);
}

// The input gradient of a normalised set as an affine map, dx = dy * A + (x - mean) * B + C:
// with rstd r, the set's scale w (1 where the caller has folded it into the sums) and
// its sums sum_dy = sum dy, sum_dyx = sum dy (x - mean) over its M values,
// dx = A (dy - sum_dy / M - xhat sum(dy xhat) / M) gives A = r w, B = -A r^2 sum_dyx / M,
// C = -A sum_dy / M.
struct NormGradCoeffs {
  double A, B, C;
};
PYDL_HOST_DEVICE inline NormGradCoeffs norm_grad_coeffs(double r, double w, double sum_dy, double sum_dyx, double M) {
  const double A = r * w;
  return {A, -A * r * r * sum_dyx / M, -A * sum_dy / M};
}

// A double split into T's nearest value and the remainder (both 0-cost for T = double).
template <typename T>
struct HiLo {
  T hi, lo;
};
template <typename T>
PYDL_HOST_DEVICE inline HiLo<T> split_hi_lo(double v) {
  const T hi = static_cast<T>(v);
  return {hi, static_cast<T>(v - static_cast<double>(hi))};
}

template <typename T>
struct NormKernelsT {
  // s += sum(x - shift), q += sum((x - shift)^2) over x[0:n]
  void (*sums_shifted)(const T* x, int64_t n, double shift, double* s, double* q);
  // s_dy += sum(dy), s_dyx += sum(dy * (x - mean)) over [0:n]
  void (*sums_grad)(const T* dy, const T* x, int64_t n, double mean, double* s_dy, double* s_dyx);
  // y = ((x - mean_hi) - mean_lo) * scale + shift over [0:n]; the statistics' mean (a
  // double) comes as hi + lo so that a float32 run with a mean far from zero is centred
  // to full precision (x - hi is exact near the mean)
  void (*affine)(const T* x, T* y, int64_t n, T mean_hi, T mean_lo, T scale, T shift);
  // dx = dy * a + (x - mean) * b + c over [0:n]
  void (*affine_grad)(const T* dy, const T* x, T* dx, int64_t n, T a, T mean, T b, T c);
  // Sums down the columns of a (rows, n) block with row stride `stride`, a parameter per
  // column j: s[j] += sum_r x[r, j] - shift[j], q[j] += sum_r (x[r, j] - shift[j])^2
  void (*col_sums_shifted)(const T* x, int64_t rows, int64_t stride, int64_t n, const T* shift, double* s, double* q);
  // s_dy[j] += sum_r dy[r, j], s_dyx[j] += sum_r dy[r, j] * (x[r, j] - mean[j])
  void (*col_sums_grad)(const T* dy, const T* x, int64_t rows, int64_t stride, int64_t n, const T* mean, double* s_dy,
                        double* s_dyx);
  // The element-wise sweeps with a parameter per position j of one row:
  // y[j] = ((x[j] - mean_hi[j]) - mean_lo[j]) * scale[j] + shift[j]
  void (*col_affine)(const T* x, T* y, int64_t n, const T* mean_hi, const T* mean_lo, const T* scale,
                     const T* shift);
  // dx[j] = dy[j] * a[j] + (x[j] - mean[j]) * b[j] + c[j]
  void (*col_affine_grad)(const T* dy, const T* x, T* dx, int64_t n, const T* a, const T* mean, const T* b,
                          const T* c);
  // Layer norm, one row of n: y = ((x - mean_hi) - mean_lo) * rstd * w + b (w, b may be null)
  void (*ln_affine)(const T* x, T* y, int64_t n, T mean_hi, T mean_lo, T rstd, const T* w, const T* b);
  // Layer norm backward, one row of n, row in L1 between two sweeps: dx, and
  // acc_dw[j] += dy[j] * xhat[j], acc_db[j] += dy[j] in T (either accumulator may be null;
  // the caller empties them into double every few rows)
  void (*ln_row_backward)(const T* dy, const T* x, T* dx, int64_t n, T mean, T rstd, const T* w, T* acc_dw,
                          T* acc_db);
};

struct NormKernels {
  NormKernelsT<float> f32;
  NormKernelsT<double> f64;
};

PYDL_DECLARE_ISA_TABLE(NormKernels, norm_kernels)

template <typename T>
const NormKernelsT<T>& pick_norm() {
  if constexpr (sizeof(T) == 4) return pick_norm_kernels().f32;
  else return pick_norm_kernels().f64;
}

}  // namespace pydl
