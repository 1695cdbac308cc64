// rnn: LSTM and GRU layers over whole sequences (the time loop in C++), and the single
// cells as the T = 1 case of the same code; forward and backward, with the bindings.
//
//   LSTM  a_t = x_t w_ih^T + h_{t-1} w_hh^T + b_ih + b_hh   (B, 4H), gates i, f, g, o
//         c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
//   GRU   gi_t = x_t w_ih^T + b_ih, gh_t = h_{t-1} w_hh^T + b_hh   (B, 3H), gates r, z, n
//         h_t = (1 - z) n + z h_{t-1},  n = tanh(gi_n + r gh_n)
// (the element-wise math: rnn.h's helpers, run by the per-ISA passes of rnn_isa.cpp).
//
// Legend: T steps, B batch, I input features, H hidden units, G = 4 (LSTM) or 3 (GRU).
//
// Algorithm. The input products of all steps do not depend on the recurrence: they are
// one gemm, (T B, I) @ (I, G H), before the loop. (One gemm of [x, h] against stacked
// [w_ih | w_hh] per step was measured slower even with the stacked weights cached: 2.9 ms
// against 2.1 ms for the two products at B64 I512 H512 on one thread, best of 60.) The
// loop then runs, per step, the recurrent product h_{t-1} w_hh^T and the fused gate pass.
// It runs inside ONE parallel region for the whole sequence: each thread owns a slice of
// hidden units [j0, j1) (a multiple of 16) and computes the columns of every gate for its
// slice, then the gate pass for its slice, so the only sync is one barrier per step (h_t
// must be complete before any thread's next product) -- no fork/join per step. The
// backward mirrors it: per step the gate pass for the slice (which also accumulates the
// bias gradient), a barrier, then dh_{t-1}[:, slice] = da_t @ w_hh[:, slice], which the
// same thread reads next; after the loop the weight and input gradients are three big
// gemms over all steps at once:
//   grad_x = da @ w_ih,  grad_w_ih = da^T x,  grad_w_hh = da^T [h_0 .. h_{T-1}]
// The per-step products, (B, H) @ (H, j1 - j0) and (B, G H) @ (G H, j1 - j0), are too small
// for gemm's packing to pay (B64 H512: ~185 GFLOP/s on one core, with 72 rows computed for
// 64): they run on the packing-free register tiles of tile_product.h (~250), reading w_hh
// in place (backward) or a transposed copy packed once per call (forward; see
// pack_recurrent).
// (for the GRU, da is split into the input part dgi and the hidden part dgh).
//
// Memory: the cache of a layer keeps the gate activations (T, B, G H) (GRU: r, z, n and
// gh_n, (T, B, 4H)), the hidden states (T + 1, B, H) and, for the LSTM, the cell states
// (T + 1, B, H) -- what back-propagation through time needs, nothing recomputed. The
// backward's workspace is the gate gradients (T, B, G H) and two (B, H) pairs.
//
// Checked by tests/kernels/test_rnn_kernels.py against the float64 NumPy reference
// (pydl/kernels/reference/rnn.py, itself checked against numeric gradients), on every ISA
// path, with and without biases and initial states, T = 0 and B = 0, 1 and 2 threads.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/gemm.h"
#include "pydl/parallel.h"
#include "pydl/rnn.h"

namespace pydl {
namespace py = pybind11;

namespace {

// C (M, N) = A (M, K) @ B (K, N) + beta C on strided operands; threads = 0 lets the
// driver pick (big products), 1 runs on the calling thread (inside our parallel region).
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rs_a, int64_t cs_a, const T* B, int64_t rs_b,
          int64_t cs_b, T* C, int64_t rs_c, T beta, int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * rs_c + j] = beta == T(0) ? T(0) : beta * C[i * rs_c + j];
    return;
  }
  GemmArgs<T> g{M, N, K, A, rs_a, cs_a, B, rs_b, cs_b, C, rs_c, T(1), beta, 1};
  if (threads != 1) {
    gemm_batched<T>(g, 1, 0, 0, 0);
  } else if constexpr (sizeof(T) == 4) {
    pick_gemm_kernels().f32(g);
  } else {
    pick_gemm_kernels().f64(g);
  }
}

// A buffer reused by the calling thread across calls: the gate gradients of a 50-step
// layer are tens of MiB, whose first touch would cost ~2 us per 4 KiB page every call.
template <typename T, int Slot>
T* reused_buffer(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// The recurrent product of a step for hidden units [j0, j1) of every gate q < G:
//   C[:, q H + j0 : q H + j1] (+)= h_prev @ w_hh[q H + j0 : q H + j1, :]^T      (C rows G H apart)
// Its B operand is w_hh^T. A sequence packs the thread's rows of w_hh once, transposed, into
// panels of kPanel columns (pack_recurrent: each panel is (H, <= kPanel), contiguous), which
// the packing-free tile kernel then streams 2 T times in order. Reading w_hh^T straight
// out of a transposed copy instead (rows 4H apart, 8 KiB at H512: one page per row) ran
// the forward loop at half the backward's speed. A single step (packed = nullptr) gives
// gemm the strided w_hh, since packing it would cost as much as gemm's own packing does.
constexpr int64_t kPanel = 64;

// Gate q's panel p of the thread is (H, w) at packed + q H n + p kPanel H with rows w apart,
// n = j1 - j0, w = min(kPanel, n - p kPanel).
template <typename T>
void pack_recurrent(const T* w_hh, int64_t G, int64_t H, int64_t j0, int64_t j1, T* packed) {
  const int64_t n = j1 - j0;
  for (int64_t q = 0; q < G; ++q)
    for (int64_t p0 = 0; p0 < n; p0 += kPanel) {
      const int64_t w = std::min(kPanel, n - p0);
      T* panel = packed + q * H * n + p0 * H;
      for (int64_t k0 = 0; k0 < H; k0 += 32)  // 32 rows of the panel stay in L1 across jj
        for (int64_t jj = 0; jj < w; ++jj) {
          const T* src = w_hh + (q * H + j0 + p0 + jj) * H;
          for (int64_t k = k0; k < std::min(H, k0 + 32); ++k) panel[k * w + jj] = src[k];
        }
    }
}

template <typename T>
void recurrent_product(const RnnKernelsT<T>& k, const T* packed, const T* w_hh, int64_t B, int64_t G, int64_t H,
                       int64_t j0, int64_t j1, const T* h_prev, T* C, bool accumulate) {
  const int64_t GH = G * H, n = j1 - j0;
  for (int64_t q = 0; q < G; ++q) {
    T* c = C + q * H + j0;
    if (!packed) {
      gemm<T>(B, n, H, h_prev, H, 1, w_hh + (q * H + j0) * H, 1, H, c, GH, accumulate ? T(1) : T(0), 1);
      continue;
    }
    for (int64_t p0 = 0; p0 < n; p0 += kPanel) {
      const int64_t w = std::min(kPanel, n - p0);
      k.product(B, w, H, h_prev, H, packed + q * H * n + p0 * H, w, c + p0, GH, accumulate);
    }
  }
}

// Hidden units of thread t of n: [slice(t), slice(t + 1)), bounds on multiples of 16.
int64_t slice(int64_t H, int n, int t) {
  if (t >= n) return H;
  return std::min<int64_t>(H, (H * t / n) / 16 * 16);
}

// Threads for the time loop: a step's recurrent product is G H x H x B multiply-adds;
// below ~2M of them per thread the barrier costs more than it saves.
int loop_threads(int64_t B, int64_t G, int64_t H) {
  const int t = threads_for(B * G * H * H, int64_t(1) << 21);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(t, H / 16)));
}

// ---------------------------------------------------------------------------------
// LSTM
// ---------------------------------------------------------------------------------

template <typename T>
struct Seq {
  int64_t T_, B, I, H;
  const T* x;     // (T, B, I)
  const T* w_ih;  // (G H, I)
  const T* w_hh;  // (G H, H)
  const T* b_ih;  // (G H,) or nullptr
  const T* b_hh;  // (G H,) or nullptr
  T* hs;          // (T + 1, B, H): hs[0] = h_0, hs[t + 1] = h_t
  T* cs;          // (T + 1, B, H): the LSTM's cell states (cs[0] = c_0)
  T* saved;       // LSTM: (T, B, 4H) gate activations; GRU: (T, B, 4H) r, z, n, gh_n
};

template <typename T>
void lstm_forward_loop(const Seq<T>& s, const T* bias, T* out) {
  const int64_t B = s.B, H = s.H, G = 4 * H, step = B * H;
  // a = x w_ih^T for every step at once: (T B, I) @ (I, 4H), into the gate buffer
  gemm<T>(s.T_ * B, G, s.I, s.x, s.I, 1, s.w_ih, 1, s.I, s.saved, G, T(0), 0);
  const RnnKernelsT<T>& k = pick_rnn<T>();
  T* wt = s.T_ > 1 ? reused_buffer<T, 2>(static_cast<size_t>(G * H)) : nullptr;  // w_hh^T in panels
  const int nt = loop_threads(B, 4, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int64_t j0 = slice(H, nt, tid), j1 = slice(H, nt, tid + 1);
    T* mine = wt ? wt + 4 * H * j0 : nullptr;  // this thread's panels: only it reads them
    if (mine) pack_recurrent(s.w_hh, 4, H, j0, j1, mine);
    for (int64_t t = 0; t < s.T_; ++t) {
      T* a = s.saved + t * B * G;
      const T* h_prev = s.hs + t * step;
      if (j1 > j0) {
        recurrent_product(k, mine, s.w_hh, B, 4, H, j0, j1, h_prev, a, true);  // a += h_{t-1} w_hh^T
        k.lstm_forward(B, H, j0, j1, bias, a, s.cs + t * step, s.cs + (t + 1) * step, s.hs + (t + 1) * step,
                       out + t * step);
      }
#pragma omp barrier
    }
  }
}

template <typename T>
struct SeqGrads {
  const T* grad_out;  // (T, B, H) or nullptr
  T* dh[2];           // (B, H) each: dh[0] holds grad_h_T on entry
  T* dc[2];           // (B, H) each: dc[0] holds grad_c_T on entry (LSTM)
  T* da;              // (T, B, G H) workspace (GRU: the input part dgi)
  T* dah;             // (T, B, 3H) GRU only: the hidden part dgh
  T* grad_x;          // (T, B, I)
  T* grad_w_ih;       // (G H, I)
  T* grad_w_hh;       // (G H, H)
  T* db;              // (G H,) zeroed: bias gradient (LSTM: both biases; GRU: b_ih)
  T* dbh;             // (3H,) zeroed: GRU's b_hh gradient
};

// After the loop: grad_x = da @ w_ih, grad_w_ih = da^T x, grad_w_hh = dah^T [h_0 .. h_{T-1}].
template <typename T>
void weight_grads(const Seq<T>& s, int64_t G, const T* da, const T* dah, const SeqGrads<T>& g) {
  const int64_t TB = s.T_ * s.B, I = s.I, H = s.H, GH = G * H;
  gemm<T>(TB, I, GH, da, GH, 1, s.w_ih, I, 1, g.grad_x, I, T(0), 0);
  gemm<T>(GH, I, TB, da, 1, GH, s.x, I, 1, g.grad_w_ih, I, T(0), 0);
  gemm<T>(GH, H, TB, dah, 1, GH, s.hs, H, 1, g.grad_w_hh, H, T(0), 0);
}

// Returns the index (0 or 1) of dh / dc holding grad_h_0 / grad_c_0.
template <typename T>
int lstm_backward_loop(const Seq<T>& s, const SeqGrads<T>& g) {
  const int64_t B = s.B, H = s.H, G = 4 * H, step = B * H;
  const RnnKernelsT<T>& k = pick_rnn<T>();
  const int nt = loop_threads(B, 4, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int64_t j0 = slice(H, nt, tid), j1 = slice(H, nt, tid + 1);
    for (int64_t t = s.T_ - 1; t >= 0; --t) {
      const int cur = static_cast<int>((s.T_ - 1 - t) % 2), nxt = 1 - cur;
      T* da = g.da + t * B * G;
      if (j1 > j0)
        k.lstm_backward(B, H, j0, j1, s.saved + t * B * G, s.cs + t * step, s.cs + (t + 1) * step, g.dh[cur],
                        g.grad_out ? g.grad_out + t * step : nullptr, g.dc[cur], da, g.dc[nxt], g.db);
#pragma omp barrier
      if (j1 > j0)  // dh_{t-1}[:, slice] = da_t @ w_hh[:, slice]
        k.product(B, j1 - j0, G, da, G, s.w_hh + j0, H, g.dh[nxt] + j0, H, false);
    }
  }
  weight_grads(s, 4, g.da, g.da, g);
  return static_cast<int>(s.T_ % 2);
}

// ---------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------

template <typename T>
void gru_forward_loop(const Seq<T>& s, T* gi, T* gh, T* out) {
  const int64_t B = s.B, H = s.H, G = 3 * H, step = B * H;
  gemm<T>(s.T_ * B, G, s.I, s.x, s.I, 1, s.w_ih, 1, s.I, gi, G, T(0), 0);  // gi = x w_ih^T, all steps
  const RnnKernelsT<T>& k = pick_rnn<T>();
  T* wt = s.T_ > 1 ? reused_buffer<T, 2>(static_cast<size_t>(G * H)) : nullptr;  // w_hh^T in panels
  const int nt = loop_threads(B, 3, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int64_t j0 = slice(H, nt, tid), j1 = slice(H, nt, tid + 1);
    T* mine = wt ? wt + 3 * H * j0 : nullptr;
    if (mine) pack_recurrent(s.w_hh, 3, H, j0, j1, mine);
    for (int64_t t = 0; t < s.T_; ++t) {
      const T* h_prev = s.hs + t * step;
      if (j1 > j0) {
        recurrent_product(k, mine, s.w_hh, B, 3, H, j0, j1, h_prev, gh, false);  // gh = h_{t-1} w_hh^T
        k.gru_forward(B, H, j0, j1, s.b_ih, s.b_hh, gi + t * B * G, gh, h_prev, s.saved + t * B * 4 * H,
                      s.hs + (t + 1) * step, out + t * step);
      }
#pragma omp barrier
    }
  }
}

template <typename T>
int gru_backward_loop(const Seq<T>& s, const SeqGrads<T>& g) {
  const int64_t B = s.B, H = s.H, G = 3 * H, step = B * H;
  const RnnKernelsT<T>& k = pick_rnn<T>();
  const int nt = loop_threads(B, 3, H);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int64_t j0 = slice(H, nt, tid), j1 = slice(H, nt, tid + 1);
    for (int64_t t = s.T_ - 1; t >= 0; --t) {
      const int cur = static_cast<int>((s.T_ - 1 - t) % 2), nxt = 1 - cur;
      T* dgh = g.dah + t * B * G;
      if (j1 > j0)  // also writes the direct part dh_t z into dh_{t-1}
        k.gru_backward(B, H, j0, j1, s.saved + t * B * 4 * H, s.hs + t * step, g.dh[cur],
                       g.grad_out ? g.grad_out + t * step : nullptr, g.da + t * B * G, dgh, g.dh[nxt], g.db,
                       g.dbh);
#pragma omp barrier
      if (j1 > j0)  // dh_{t-1}[:, slice] += dgh_t @ w_hh[:, slice]
        k.product(B, j1 - j0, G, dgh, G, s.w_hh + j0, H, g.dh[nxt] + j0, H, true);
    }
  }
  weight_grads(s, 3, g.da, g.dah, g);
  return static_cast<int>(s.T_ % 2);
}

// ---------------------------------------------------------------------------------
// Bindings
// ---------------------------------------------------------------------------------

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;
using Shape = std::vector<py::ssize_t>;

std::string dims(std::initializer_list<int64_t> d) {
  std::string s = "(";
  int i = 0;
  for (int64_t v : d) s += (i++ ? ", " : "") + std::to_string(v);
  return s + (d.size() == 1 ? ",)" : ")");
}

// An optional float array of exactly `want` shape and the dtype of `like`, or None.
py::object optional_arg(const py::object& obj, const py::array& like, std::initializer_list<int64_t> want,
                        const char* op, const char* name) {
  if (obj.is_none()) return py::none();
  py::array a = as_array(obj, op, name);
  float_kind(a, op, name);
  check_same_dtype(like, a, op, "input", name);
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  int i = 0;
  for (int64_t w : want) ok = ok && a.shape(i++) == w;
  if (!ok)
    throw py::value_error(std::string(op) + ": " + name + " must have shape " + dims(want) + ", got " + shape_str(a));
  return a;
}

// The checked arguments of a layer: x as (T, B, I), weights, biases, initial states.
struct Layer {
  py::array x, w_ih, w_hh;
  py::object b_ih, b_hh, h0, c0;
  int64_t T, B, I, H;
  Float kind;
};

Layer check_layer(const py::object& x_obj, const py::object& h0, const py::object& c0, const py::object& w_ih_obj,
                  const py::object& w_hh_obj, const py::object& b_ih, const py::object& b_hh, int64_t G, bool cell,
                  bool lstm, const char* op) {
  Layer l;
  l.x = as_array(x_obj, op, "input");
  l.kind = float_kind(l.x, op, "input");
  if (cell) {
    if (l.x.ndim() != 2)
      throw py::value_error(std::string(op) + ": input must have 2 dimensions (B, I), got shape " + shape_str(l.x));
    l.x = l.x.reshape({py::ssize_t(1), l.x.shape(0), l.x.shape(1)});
  } else if (l.x.ndim() != 3) {
    throw py::value_error(std::string(op) + ": input must have 3 dimensions (T, B, I), got shape " + shape_str(l.x));
  }
  l.T = l.x.shape(0);
  l.B = l.x.shape(1);
  l.I = l.x.shape(2);
  l.w_hh = as_array(w_hh_obj, op, "w_hh");
  float_kind(l.w_hh, op, "w_hh");
  check_same_dtype(l.x, l.w_hh, op, "input", "w_hh");
  if (l.w_hh.ndim() != 2 || l.w_hh.shape(0) != G * l.w_hh.shape(1))
    throw py::value_error(std::string(op) + ": w_hh must have shape (" + std::to_string(G) + " * H, H), got " +
                          shape_str(l.w_hh));
  l.H = l.w_hh.shape(1);
  l.w_ih = as_array(w_ih_obj, op, "w_ih");
  float_kind(l.w_ih, op, "w_ih");
  check_same_dtype(l.x, l.w_ih, op, "input", "w_ih");
  if (l.w_ih.ndim() != 2 || l.w_ih.shape(0) != G * l.H || l.w_ih.shape(1) != l.I)
    throw py::value_error(std::string(op) + ": w_ih must have shape " + dims({G * l.H, l.I}) + " for input size " +
                          std::to_string(l.I) + " and hidden size " + std::to_string(l.H) + ", got " +
                          shape_str(l.w_ih));
  l.b_ih = optional_arg(b_ih, l.x, {G * l.H}, op, "b_ih");
  l.b_hh = optional_arg(b_hh, l.x, {G * l.H}, op, "b_hh");
  l.h0 = optional_arg(h0, l.x, {l.B, l.H}, op, cell ? "hx" : "h0");
  l.c0 = lstm ? optional_arg(c0, l.x, {l.B, l.H}, op, cell ? "cx" : "c0") : py::none();
  return l;
}

// Copies an optional (B, H) state into dst (zeros when None).
template <typename T>
void fill_state(const py::object& src, T* dst, int64_t n) {
  if (src.is_none()) {
    std::fill(dst, dst + n, T(0));
    return;
  }
  auto a = contiguous<T>(py::reinterpret_borrow<py::array>(src));
  std::copy(a.data(), a.data() + n, dst);
}

template <typename T>
const T* data_or_null(const py::object& a) {
  return a.is_none() ? nullptr : py::reinterpret_borrow<Arr<T>>(a).data();
}

// Forward of a layer (lstm or gru), returning (out, h_T, c_T or None, cache).
template <typename T>
py::tuple layer_forward(Layer& l, bool lstm, const char* tag) {
  const int64_t T_ = l.T, B = l.B, H = l.H, G = (lstm ? 4 : 3) * H;
  Arr<T> x = contiguous<T>(l.x), w_ih = contiguous<T>(l.w_ih), w_hh = contiguous<T>(l.w_hh);
  py::object b_ih = l.b_ih.is_none() ? py::object(py::none()) : py::object(contiguous<T>(l.b_ih));
  py::object b_hh = l.b_hh.is_none() ? py::object(py::none()) : py::object(contiguous<T>(l.b_hh));
  Arr<T> out(Shape{T_, B, H}), hs(Shape{T_ + 1, B, H}), saved(Shape{T_, B, 4 * H});
  Arr<T> cs(Shape{lstm ? T_ + 1 : 0, B, H});
  fill_state<T>(l.h0, hs.mutable_data(), B * H);
  if (lstm) fill_state<T>(l.c0, cs.mutable_data(), B * H);
  Seq<T> s{T_, B, l.I, H, x.data(), w_ih.data(), w_hh.data(), data_or_null<T>(b_ih), data_or_null<T>(b_hh),
           hs.mutable_data(), cs.mutable_data(), saved.mutable_data()};
  {
    py::gil_scoped_release release;
    if (lstm) {
      std::vector<T> bias;  // b_ih + b_hh, added once in the gate pass
      if (s.b_ih || s.b_hh) {
        bias.assign(static_cast<size_t>(G), T(0));
        for (int64_t j = 0; j < G; ++j) bias[j] = (s.b_ih ? s.b_ih[j] : T(0)) + (s.b_hh ? s.b_hh[j] : T(0));
      }
      lstm_forward_loop(s, bias.empty() ? nullptr : bias.data(), out.mutable_data());
    } else {
      T* gi = reused_buffer<T, 0>(static_cast<size_t>(T_ * B * G + B * G));  // (T, B, 3H) + (B, 3H)
      gru_forward_loop(s, gi, gi + T_ * B * G, out.mutable_data());
    }
  }
  py::array h_T = Arr<T>(Shape{B, H}), c_T;
  std::copy(hs.data() + T_ * B * H, hs.data() + (T_ + 1) * B * H, static_cast<T*>(h_T.mutable_data()));
  py::object c_out = py::none();
  if (lstm) {
    c_T = Arr<T>(Shape{B, H});
    std::copy(cs.data() + T_ * B * H, cs.data() + (T_ + 1) * B * H, static_cast<T*>(c_T.mutable_data()));
    c_out = c_T;
  }
  py::tuple cache = py::make_tuple(tag, x, w_ih, w_hh, hs, cs, saved, !l.b_ih.is_none(), !l.b_hh.is_none());
  return py::make_tuple(out, h_T, c_out, cache);
}

// The cache of `tag`'s forward, unpacked; a clear error for anything else.
struct Cache {
  py::array x, w_ih, w_hh, hs, cs, saved;
  bool has_b_ih, has_b_hh;
  int64_t T, B, I, H;
};

Cache unpack_cache(const py::object& obj, const char* tag, const char* op) {
  const std::string fwd = std::string(tag) + "_forward";
  auto bad = [&]() {
    return py::type_error(std::string(op) + ": cache must be the cache returned by the cpu backend's " + fwd);
  };
  if (!py::isinstance<py::tuple>(obj)) throw bad();
  py::tuple t = py::reinterpret_borrow<py::tuple>(obj);
  if (t.size() != 9 || !py::isinstance<py::str>(t[0]) || t[0].cast<std::string>() != tag) throw bad();
  Cache c{t[1].cast<py::array>(), t[2].cast<py::array>(), t[3].cast<py::array>(), t[4].cast<py::array>(),
          t[5].cast<py::array>(), t[6].cast<py::array>(), t[7].cast<bool>(), t[8].cast<bool>(), 0, 0, 0, 0};
  c.T = c.x.shape(0);
  c.B = c.x.shape(1);
  c.I = c.x.shape(2);
  c.H = c.hs.shape(2);
  return c;
}

// Backward of a layer: (grad_x, grad_h0, grad_c0 (LSTM), grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).
template <typename T>
py::tuple layer_backward(const Cache& c, const py::object& grad_out, const py::object& grad_hT,
                         const py::object& grad_cT, bool lstm, const char* op, bool cell) {
  const int64_t T_ = c.T, B = c.B, I = c.I, H = c.H, G = (lstm ? 4 : 3) * H;
  py::object go = optional_arg(grad_out, c.x, {T_, B, H}, op, "grad_out");
  py::object gh = optional_arg(grad_hT, c.x, {B, H}, op, cell ? "grad_h" : "grad_h_T");
  py::object gc = lstm ? optional_arg(grad_cT, c.x, {B, H}, op, cell ? "grad_c" : "grad_c_T") : py::none();
  if (!go.is_none()) go = contiguous<T>(go);
  Arr<T> grad_x(Shape{T_, B, I}), grad_w_ih(Shape{G, I}), grad_w_hh(Shape{G, H}), db(Shape{G}), dbh(Shape{G});
  Arr<T> dh0(Shape{B, H}), dh1(Shape{B, H}), dc0(Shape{B, H}), dc1(Shape{B, H});
  fill_state<T>(gh, dh0.mutable_data(), B * H);
  fill_state<T>(gc, dc0.mutable_data(), B * H);
  std::fill(db.mutable_data(), db.mutable_data() + G, T(0));
  std::fill(dbh.mutable_data(), dbh.mutable_data() + G, T(0));
  Seq<T> s{T_, B, I, H, static_cast<const T*>(c.x.data()), static_cast<const T*>(c.w_ih.data()),
           static_cast<const T*>(c.w_hh.data()), nullptr, nullptr, static_cast<T*>(const_cast<void*>(c.hs.data())),
           static_cast<T*>(const_cast<void*>(c.cs.data())), static_cast<T*>(const_cast<void*>(c.saved.data()))};
  int final_index;
  {
    py::gil_scoped_release release;
    T* da = reused_buffer<T, 0>(static_cast<size_t>(T_ * B * G));                // (T, B, G H)
    T* dah = lstm ? da : reused_buffer<T, 1>(static_cast<size_t>(T_ * B * G));  // GRU: (T, B, 3H)
    SeqGrads<T> g{go.is_none() ? nullptr : py::reinterpret_borrow<Arr<T>>(go).data(),
                  {dh0.mutable_data(), dh1.mutable_data()},
                  {dc0.mutable_data(), dc1.mutable_data()},
                  da,
                  dah,
                  grad_x.mutable_data(),
                  grad_w_ih.mutable_data(),
                  grad_w_hh.mutable_data(),
                  db.mutable_data(),
                  dbh.mutable_data()};
    final_index = lstm ? lstm_backward_loop(s, g) : gru_backward_loop(s, g);
  }
  py::object gx = cell ? py::object(grad_x.reshape({B, I})) : py::object(grad_x);
  py::object gb_ih = c.has_b_ih ? py::object(db) : py::object(py::none());
  py::object gb_hh = py::none();
  if (c.has_b_hh && !lstm) gb_hh = dbh;
  if (c.has_b_hh && lstm) gb_hh = c.has_b_ih ? db.attr("copy")() : py::object(db);  // both biases: the same gradient
  py::object gh0 = final_index ? py::object(dh1) : py::object(dh0);
  if (lstm) {
    py::object gc0 = final_index ? py::object(dc1) : py::object(dc0);
    return py::make_tuple(gx, gh0, gc0, grad_w_ih, grad_w_hh, gb_ih, gb_hh);
  }
  return py::make_tuple(gx, gh0, grad_w_ih, grad_w_hh, gb_ih, gb_hh);
}

template <typename F>
auto by_dtype(Float kind, F&& f) {
  return kind == Float::f32 ? f(float{}) : f(double{});
}

Float cache_kind(const Cache& c) { return c.x.dtype().equal(py::dtype::of<float>()) ? Float::f32 : Float::f64; }

}  // namespace

void bind_rnn(py::module_& m) {
  m.def(
      "lstm_forward",
      [](py::object x, py::object h0, py::object c0, py::object w_ih, py::object w_hh, py::object b_ih,
         py::object b_hh) {
        Layer l = check_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh, 4, false, true, "lstm_forward");
        return by_dtype(l.kind, [&](auto t) { return layer_forward<decltype(t)>(l, true, "lstm"); });
      },
      py::arg("x_seq"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
      py::arg("b_hh") = py::none(),
      R"doc(An LSTM layer over a sequence: x_seq (T, B, I), h0, c0 (B, H) or None -> (out (T, B, H), h_T, c_T, cache).

Gate order i, f, g, o (PyTorch's); w_ih (4H, I), w_hh (4H, H), biases (4H,) or None. The
time loop runs in C++: one gemm for the input products of all steps, then per step one
product with w_hh and the fused gate pass. The cache is opaque (for lstm_backward).)doc");
  m.def(
      "lstm_backward",
      [](py::object grad_out, py::object grad_hT, py::object grad_cT, py::object cache) {
        Cache c = unpack_cache(cache, "lstm", "lstm_backward");
        return by_dtype(cache_kind(c), [&](auto t) {
          return layer_backward<decltype(t)>(c, grad_out, grad_hT, grad_cT, true, "lstm_backward", false);
        });
      },
      py::arg("grad_out"), py::arg("grad_hT"), py::arg("grad_cT"), py::arg("cache"),
      R"doc(Back-propagation through time for lstm_forward: grad_out (T, B, H), grad_h_T, grad_c_T (B, H), any may be
None -> (grad_x_seq, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh); bias gradients are None
where the forward had no bias.)doc");
  m.def(
      "gru_forward",
      [](py::object x, py::object h0, py::object w_ih, py::object w_hh, py::object b_ih, py::object b_hh) {
        Layer l = check_layer(x, h0, py::none(), w_ih, w_hh, b_ih, b_hh, 3, false, false, "gru_forward");
        return by_dtype(l.kind, [&](auto t) {
          py::tuple r = layer_forward<decltype(t)>(l, false, "gru");
          return py::make_tuple(r[0], r[1], r[3]);
        });
      },
      py::arg("x_seq"), py::arg("h0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
      py::arg("b_hh") = py::none(),
      R"doc(A GRU layer over a sequence: x_seq (T, B, I), h0 (B, H) or None -> (out (T, B, H), h_T, cache).

Gate order r, z, n; n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)) (PyTorch's).)doc");
  m.def(
      "gru_backward",
      [](py::object grad_out, py::object grad_hT, py::object cache) {
        Cache c = unpack_cache(cache, "gru", "gru_backward");
        return by_dtype(cache_kind(c), [&](auto t) {
          return layer_backward<decltype(t)>(c, grad_out, grad_hT, py::none(), false, "gru_backward", false);
        });
      },
      py::arg("grad_out"), py::arg("grad_hT"), py::arg("cache"),
      R"doc(Back-propagation through time for gru_forward -> (grad_x_seq, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih,
grad_b_hh).)doc");
  m.def(
      "lstm_cell_forward",
      [](py::object x, py::object h, py::object c, py::object w_ih, py::object w_hh, py::object b_ih,
         py::object b_hh) {
        Layer l = check_layer(x, h, c, w_ih, w_hh, b_ih, b_hh, 4, true, true, "lstm_cell_forward");
        return by_dtype(l.kind, [&](auto t) {
          py::tuple r = layer_forward<decltype(t)>(l, true, "lstm_cell");
          return py::make_tuple(r[0].attr("reshape")(l.B, l.H), r[2], r[3]);
        });
      },
      py::arg("x"), py::arg("h"), py::arg("c"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
      py::arg("b_hh") = py::none(),
      R"doc(One LSTM step: x (B, I), h, c (B, H) (None: zeros) -> (h' (B, H), c' (B, H), cache).)doc");
  m.def(
      "lstm_cell_backward",
      [](py::object grad_h, py::object grad_c, py::object cache) {
        Cache c = unpack_cache(cache, "lstm_cell", "lstm_cell_backward");
        return by_dtype(cache_kind(c), [&](auto t) {
          return layer_backward<decltype(t)>(c, py::none(), grad_h, grad_c, true, "lstm_cell_backward", true);
        });
      },
      py::arg("grad_h"), py::arg("grad_c"), py::arg("cache"),
      R"doc(Backward of one LSTM step: grad_h', grad_c' (B, H) (either may be None) -> (grad_x, grad_h, grad_c,
grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).)doc");
  m.def(
      "gru_cell_forward",
      [](py::object x, py::object h, py::object w_ih, py::object w_hh, py::object b_ih, py::object b_hh) {
        Layer l = check_layer(x, h, py::none(), w_ih, w_hh, b_ih, b_hh, 3, true, false, "gru_cell_forward");
        return by_dtype(l.kind, [&](auto t) {
          py::tuple r = layer_forward<decltype(t)>(l, false, "gru_cell");
          return py::make_tuple(r[0].attr("reshape")(l.B, l.H), r[3]);
        });
      },
      py::arg("x"), py::arg("h"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih") = py::none(),
      py::arg("b_hh") = py::none(), R"doc(One GRU step: x (B, I), h (B, H) (None: zeros) -> (h' (B, H), cache).)doc");
  m.def(
      "gru_cell_backward",
      [](py::object grad_h, py::object cache) {
        Cache c = unpack_cache(cache, "gru_cell", "gru_cell_backward");
        return by_dtype(cache_kind(c), [&](auto t) {
          return layer_backward<decltype(t)>(c, py::none(), grad_h, py::none(), false, "gru_cell_backward", true);
        });
      },
      py::arg("grad_h"), py::arg("cache"),
      R"doc(Backward of one GRU step: grad_h' (B, H) ->
(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).)doc");
}

}  // namespace pydl
