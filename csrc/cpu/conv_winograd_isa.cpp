// The transforms of Winograd's F(2x2, 3x3) (see conv_winograd.cpp), compiled once per ISA
// (see isa.h). Each works on a list of tiles given by offsets, so that the tiles of
// several images, their rows and columns, run as one flat loop:
//   filters: U (16, KC) <- w (KC, 3, 3)                              U = G w G^T
//   input:   V[xi * vs + p] <- the 4x4 patch at planes + off[p]     V = B^T d B
//            (planes: zero-padded image planes, rows Wp long, so that no patch needs a bound)
//   output:  out[oo[p] + (0, 1, OW, OW + 1)] <- A^T m A + bias       m[xi] = M[xi * ms + p]
//            (flags[p] bit 0: the tile's second column exists, bit 1: its second row)
// and, for the weight gradient, the transposes of the output and filter transforms:
//   grad_output:  dM[xi * ms + p] <- A dY A^T, dY the 2x2 tile of grad_out at oo[p] (zero where it has none)
//   grad_filters: grad_w (KC, 3, 3) <- G^T dU G
// Float32 on AVX-512 runs 16 tiles (filters) per vector, the patches gathered and the
// outputs scattered by their offsets; elsewhere one tile at a time.
//
// Checked through conv2d's tests (tests/kernels/test_conv.py) on every ISA path.
#include <cstdint>
#include <type_traits>

#include "pydl/conv.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS {
namespace {

template <typename T>
void filters(int64_t kc0, int64_t n, int64_t KC, const T* w, T* U) {
  for (int64_t i = kc0; i < kc0 + n; ++i) {
    const T* f = w + i * 9;
    T gw[4][3];  // G w: rows f0, (f0 + f1 + f2) / 2, (f0 - f1 + f2) / 2, f2
    for (int j = 0; j < 3; ++j) {
      const T a = f[j], b = f[3 + j], c = f[6 + j];
      gw[0][j] = a, gw[1][j] = (a + b + c) / 2, gw[2][j] = (a - b + c) / 2, gw[3][j] = c;
    }
    for (int r = 0; r < 4; ++r) {
      const T a = gw[r][0], b = gw[r][1], c = gw[r][2];
      U[(r * 4 + 0) * KC + i] = a, U[(r * 4 + 1) * KC + i] = (a + b + c) / 2;
      U[(r * 4 + 2) * KC + i] = (a - b + c) / 2, U[(r * 4 + 3) * KC + i] = c;
    }
  }
}

template <typename T>
void input(const T* planes, const int32_t* off, int64_t P, int64_t Wp, T* V, int64_t vs) {
  for (int64_t p = 0; p < P; ++p) {
    const T* d = planes + off[p];
    T t[4][4];  // B^T d
    for (int j = 0; j < 4; ++j) {
      const T d0 = d[j], d1 = d[Wp + j], d2 = d[2 * Wp + j], d3 = d[3 * Wp + j];
      t[0][j] = d0 - d2, t[1][j] = d1 + d2, t[2][j] = d2 - d1, t[3][j] = d1 - d3;
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B
      T* v = V + i * 4 * vs + p;
      v[0] = t[i][0] - t[i][2], v[vs] = t[i][1] + t[i][2], v[2 * vs] = t[i][2] - t[i][1], v[3 * vs] = t[i][1] - t[i][3];
    }
  }
}

template <typename T>
void output(const T* M, int64_t ms, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW, T bias, T* out) {
  for (int64_t p = 0; p < P; ++p) {
    T s[2][4];  // A^T m
    for (int j = 0; j < 4; ++j) {
      const T m0 = M[j * ms + p], m1 = M[(4 + j) * ms + p], m2 = M[(8 + j) * ms + p], m3 = M[(12 + j) * ms + p];
      s[0][j] = m0 + m1 + m2, s[1][j] = m1 - m2 - m3;
    }
    T* o = out + oo[p];
    for (int a = 0; a < 2; ++a) {
      if (a == 1 && !(flags[p] & 2)) break;
      o[a * OW] = s[a][0] + s[a][1] + s[a][2] + bias;
      if (flags[p] & 1) o[a * OW + 1] = s[a][1] - s[a][2] - s[a][3] + bias;
    }
  }
}

template <typename T>
void grad_output(const T* go, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW, T* dM, int64_t ms) {
  for (int64_t p = 0; p < P; ++p) {
    const T* y = go + oo[p];
    const bool col = flags[p] & 1, row = flags[p] & 2;
    const T y00 = y[0], y01 = col ? y[1] : T(0), y10 = row ? y[OW] : T(0), y11 = row && col ? y[OW + 1] : T(0);
    const T r[4][2] = {{y00, y01}, {y00 + y10, y01 + y11}, {y00 - y10, y01 - y11}, {-y10, -y11}};  // A dY
    for (int i = 0; i < 4; ++i) {  // (A dY) A^T
      T* m = dM + i * 4 * ms + p;
      m[0] = r[i][0], m[ms] = r[i][0] + r[i][1], m[2 * ms] = r[i][0] - r[i][1], m[3 * ms] = -r[i][1];
    }
  }
}

template <typename T>
void grad_filters(int64_t kc0, int64_t n, int64_t KC, const T* dU, T* gw) {
  for (int64_t i = kc0; i < kc0 + n; ++i) {
    T h[3][4];  // G^T dU
    for (int j = 0; j < 4; ++j) {
      const T u0 = dU[j * KC + i], u1 = dU[(4 + j) * KC + i], u2 = dU[(8 + j) * KC + i], u3 = dU[(12 + j) * KC + i];
      h[0][j] = u0 + (u1 + u2) / 2, h[1][j] = (u1 - u2) / 2, h[2][j] = (u1 + u2) / 2 + u3;
    }
    T* f = gw + i * 9;
    for (int a = 0; a < 3; ++a)  // (G^T dU) G
      f[a * 3] = h[a][0] + (h[a][1] + h[a][2]) / 2, f[a * 3 + 1] = (h[a][1] - h[a][2]) / 2,
      f[a * 3 + 2] = (h[a][1] + h[a][2]) / 2 + h[a][3];
  }
}

#if defined(__AVX512F__)
__mmask16 lanes(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }
// Where each of 16 consecutive filters' 3x3 values start: 9 apart.
__m512i filter_starts() {
  return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(9));
}

void filters_f32(int64_t kc0, int64_t n, int64_t KC, const float* w, float* U) {
  const __m512i nine = filter_starts();
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int64_t i = kc0; i < kc0 + n; i += 16) {
    const __mmask16 m = lanes(kc0 + n - i);
    __m512 f[9];
    for (int j = 0; j < 9; ++j) f[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, nine, w + i * 9 + j, 4);
    __m512 gw[4][3];
    for (int j = 0; j < 3; ++j) {
      const __m512 a = f[j], b = f[3 + j], c = f[6 + j], ac = _mm512_add_ps(a, c);
      gw[0][j] = a, gw[1][j] = _mm512_mul_ps(_mm512_add_ps(ac, b), half);
      gw[2][j] = _mm512_mul_ps(_mm512_sub_ps(ac, b), half), gw[3][j] = c;
    }
    for (int r = 0; r < 4; ++r) {
      const __m512 a = gw[r][0], b = gw[r][1], c = gw[r][2], ac = _mm512_add_ps(a, c);
      _mm512_mask_storeu_ps(U + (r * 4 + 0) * KC + i, m, a);
      _mm512_mask_storeu_ps(U + (r * 4 + 1) * KC + i, m, _mm512_mul_ps(_mm512_add_ps(ac, b), half));
      _mm512_mask_storeu_ps(U + (r * 4 + 2) * KC + i, m, _mm512_mul_ps(_mm512_sub_ps(ac, b), half));
      _mm512_mask_storeu_ps(U + (r * 4 + 3) * KC + i, m, c);
    }
  }
}

void input_f32(const float* planes, const int32_t* off, int64_t P, int64_t Wp, float* V, int64_t vs) {
  for (int64_t p = 0; p < P; p += 16) {
    const __mmask16 m = lanes(P - p);
    const __m512i idx = _mm512_maskz_loadu_epi32(m, off + p);
    __m512 t[4][4];  // B^T d, the patch gathered row by row
    for (int j = 0; j < 4; ++j) {
      __m512 d[4];
      for (int i = 0; i < 4; ++i) d[i] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, planes + i * Wp + j, 4);
      t[0][j] = _mm512_sub_ps(d[0], d[2]), t[1][j] = _mm512_add_ps(d[1], d[2]);
      t[2][j] = _mm512_sub_ps(d[2], d[1]), t[3][j] = _mm512_sub_ps(d[1], d[3]);
    }
    for (int i = 0; i < 4; ++i) {
      float* v = V + i * 4 * vs + p;
      _mm512_mask_storeu_ps(v, m, _mm512_sub_ps(t[i][0], t[i][2]));
      _mm512_mask_storeu_ps(v + vs, m, _mm512_add_ps(t[i][1], t[i][2]));
      _mm512_mask_storeu_ps(v + 2 * vs, m, _mm512_sub_ps(t[i][2], t[i][1]));
      _mm512_mask_storeu_ps(v + 3 * vs, m, _mm512_sub_ps(t[i][1], t[i][3]));
    }
  }
}

void output_f32(const float* M, int64_t ms, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW,
                float bias, float* out) {
  const __m512 b = _mm512_set1_ps(bias);
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), down = _mm512_set1_epi32(int32_t(OW));
  for (int64_t p = 0; p < P; p += 16) {
    const __mmask16 m = lanes(P - p);
    __m512 s[2][4];
    for (int j = 0; j < 4; ++j) {
      const __m512 m0 = _mm512_maskz_loadu_ps(m, M + j * ms + p), m1 = _mm512_maskz_loadu_ps(m, M + (4 + j) * ms + p);
      const __m512 m2 = _mm512_maskz_loadu_ps(m, M + (8 + j) * ms + p), m3 = _mm512_maskz_loadu_ps(m, M + (12 + j) * ms + p);
      s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
      s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    const __m512i idx = _mm512_maskz_loadu_epi32(m, oo + p);
    const __m512i fl = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, flags + p));
    const __mmask16 has_col = _mm512_mask_test_epi32_mask(m, fl, one), has_row = _mm512_mask_test_epi32_mask(m, fl, two);
    for (int a = 0; a < 2; ++a) {
      const __mmask16 row = a == 0 ? m : has_row;
      const __m512i at = a == 0 ? idx : _mm512_add_epi32(idx, down);
      const __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]), b);
      const __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]), b);
      _mm512_mask_i32scatter_ps(out, row, at, y0, 4);
      _mm512_mask_i32scatter_ps(out + 1, row & has_col, at, y1, 4);
    }
  }
}

void grad_output_f32(const float* go, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW, float* dM,
                     int64_t ms) {
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), down = _mm512_set1_epi32(int32_t(OW));
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = 0; p < P; p += 16) {
    const __mmask16 m = lanes(P - p);
    const __m512i idx = _mm512_maskz_loadu_epi32(m, oo + p);
    const __m512i fl = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, flags + p));
    const __mmask16 col = _mm512_mask_test_epi32_mask(m, fl, one), row = _mm512_mask_test_epi32_mask(m, fl, two);
    const __m512i below = _mm512_add_epi32(idx, down);
    const __m512 y00 = _mm512_mask_i32gather_ps(zero, m, idx, go, 4);
    const __m512 y01 = _mm512_mask_i32gather_ps(zero, col, idx, go + 1, 4);
    const __m512 y10 = _mm512_mask_i32gather_ps(zero, row, below, go, 4);
    const __m512 y11 = _mm512_mask_i32gather_ps(zero, row & col, below, go + 1, 4);
    const __m512 r[4][2] = {{y00, y01},
                            {_mm512_add_ps(y00, y10), _mm512_add_ps(y01, y11)},
                            {_mm512_sub_ps(y00, y10), _mm512_sub_ps(y01, y11)},
                            {_mm512_sub_ps(zero, y10), _mm512_sub_ps(zero, y11)}};
    for (int i = 0; i < 4; ++i) {
      float* d = dM + i * 4 * ms + p;
      _mm512_mask_storeu_ps(d, m, r[i][0]);
      _mm512_mask_storeu_ps(d + ms, m, _mm512_add_ps(r[i][0], r[i][1]));
      _mm512_mask_storeu_ps(d + 2 * ms, m, _mm512_sub_ps(r[i][0], r[i][1]));
      _mm512_mask_storeu_ps(d + 3 * ms, m, _mm512_sub_ps(zero, r[i][1]));
    }
  }
}

void grad_filters_f32(int64_t kc0, int64_t n, int64_t KC, const float* dU, float* gw) {
  const __m512i nine = filter_starts();
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int64_t i = kc0; i < kc0 + n; i += 16) {
    const __mmask16 m = lanes(kc0 + n - i);
    __m512 h[3][4];  // G^T dU
    for (int j = 0; j < 4; ++j) {
      const __m512 u0 = _mm512_maskz_loadu_ps(m, dU + j * KC + i), u1 = _mm512_maskz_loadu_ps(m, dU + (4 + j) * KC + i);
      const __m512 u2 = _mm512_maskz_loadu_ps(m, dU + (8 + j) * KC + i), u3 = _mm512_maskz_loadu_ps(m, dU + (12 + j) * KC + i);
      const __m512 s = _mm512_mul_ps(_mm512_add_ps(u1, u2), half);
      h[0][j] = _mm512_add_ps(u0, s), h[1][j] = _mm512_mul_ps(_mm512_sub_ps(u1, u2), half), h[2][j] = _mm512_add_ps(s, u3);
    }
    for (int a = 0; a < 3; ++a) {  // (G^T dU) G, each value to its place among the filters' 9
      const __m512 s = _mm512_mul_ps(_mm512_add_ps(h[a][1], h[a][2]), half);
      float* f = gw + i * 9 + a * 3;
      _mm512_mask_i32scatter_ps(f, m, nine, _mm512_add_ps(h[a][0], s), 4);
      _mm512_mask_i32scatter_ps(f + 1, m, nine, _mm512_mul_ps(_mm512_sub_ps(h[a][1], h[a][2]), half), 4);
      _mm512_mask_i32scatter_ps(f + 2, m, nine, _mm512_add_ps(s, h[a][3]), 4);
    }
  }
}
#endif

template <typename T>
WinogradLoops<T> loops() {
  WinogradLoops<T> l{&filters<T>, &input<T>, &output<T>, &grad_output<T>, &grad_filters<T>};
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) l = {&filters_f32, &input_f32, &output_f32, &grad_output_f32, &grad_filters_f32};
#endif
  return l;
}

}  // namespace

extern const WinogradKernels winograd_kernels = {loops<float>(), loops<double>()};

}  // namespace pydl::PYDL_ISA_NS
