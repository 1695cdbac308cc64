// gemm binding and batched driver; the kernel itself is in gemm_isa.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <exception>
#include <string>

#include "pydl/checks.h"
#include "pydl/gemm.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

template <typename T>
void gemm_batched(const GemmArgs<T>& first, int64_t batch, int64_t bs_a, int64_t bs_b, int64_t bs_c) {
  auto kernel = [](const GemmArgs<T>& g) {
    if constexpr (std::is_same_v<T, float>) pick_gemm_kernels().f32(g);
    else pick_gemm_kernels().f64(g);
  };
  const int64_t flops = first.M * first.N * std::max<int64_t>(first.K, 1);
  // A product is worth a second thread from ~2^24 multiply-adds on (256^3, ~0.1 ms on one
  // core): waking a team costs microseconds on a quiet machine but milliseconds when
  // another process holds the other core, which small products cannot win back.
  constexpr int64_t kGrain = int64_t(1) << 23;
  const int inner = threads_for(flops, kGrain);
  if (batch == 1 || inner >= num_threads()) {
    for (int64_t b = 0; b < batch; ++b) {
      GemmArgs<T> g = first;
      g.A += b * bs_a; g.B += b * bs_b; g.C += b * bs_c;
      g.threads = inner;
      kernel(g);
    }
    return;
  }
  // Small products: one thread each, the batch split across the team.
  const int team = threads_for(flops * batch, kGrain);
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel for schedule(static) num_threads(team) if (team > 1)
  for (int64_t b = 0; b < batch; ++b) {
    GemmArgs<T> g = first;
    g.A += b * bs_a; g.B += b * bs_b; g.C += b * bs_c;
    g.threads = 1;
    try {
      kernel(g);
    } catch (...) {
#pragma omp critical(pydl_gemm_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

template void gemm_batched<float>(const GemmArgs<float>&, int64_t, int64_t, int64_t, int64_t);
template void gemm_batched<double>(const GemmArgs<double>&, int64_t, int64_t, int64_t, int64_t);

namespace {

template <typename T>
py::array gemm_typed(py::array a, py::array b, py::object c, bool trans_a, bool trans_b, double alpha,
                     double beta) {
  const char* op = "gemm";
  const bool batched = a.ndim() == 3 || b.ndim() == 3;
  const int64_t batch_a = a.ndim() == 3 ? a.shape(0) : 1, batch_b = b.ndim() == 3 ? b.shape(0) : 1;
  if (batch_a != batch_b && batch_a != 1 && batch_b != 1)
    throw py::value_error(std::string(op) + ": batch sizes differ: a has " + std::to_string(batch_a) +
                          " matrices, b has " + std::to_string(batch_b));
  const int64_t batch = std::max(batch_a, batch_b);

  // Each operand as (batch stride, row stride, col stride) of op(X) in elements.
  auto describe = [&](py::array& x, bool trans, int64_t& rows, int64_t& cols, int64_t& bs,
                      int64_t& rs, int64_t& cs) {
    std::vector<int64_t> st = element_strides<T>(x);
    if (st.empty() && x.ndim() > 0) {
      x = contiguous<T>(x);
      st = element_strides<T>(x);
    }
    const int o = x.ndim() == 3 ? 1 : 0;
    bs = x.ndim() == 3 && x.shape(0) > 1 ? st[0] : 0;
    rows = x.shape(o + (trans ? 1 : 0));
    cols = x.shape(o + (trans ? 0 : 1));
    rs = st[o + (trans ? 1 : 0)];
    cs = st[o + (trans ? 0 : 1)];
  };
  int64_t M, Ka, bs_a, rs_a, cs_a, Kb, N, bs_b, rs_b, cs_b;
  describe(a, trans_a, M, Ka, bs_a, rs_a, cs_a);
  describe(b, trans_b, Kb, N, bs_b, rs_b, cs_b);
  if (Ka != Kb)
    throw py::value_error(std::string(op) + ": inner dimensions differ: op(a) is " + std::to_string(M) + "x" +
                          std::to_string(Ka) + " but op(b) is " + std::to_string(Kb) + "x" + std::to_string(N) +
                          " (a " + shape_str(a) + ", b " + shape_str(b) + ", trans_a=" + (trans_a ? "True" : "False") +
                          ", trans_b=" + (trans_b ? "True" : "False") + ")");

  std::vector<py::ssize_t> out_shape;
  if (batched) out_shape.push_back(batch);
  out_shape.push_back(M);
  out_shape.push_back(N);
  py::array_t<T, py::array::c_style> out(out_shape);
  T beta_t = static_cast<T>(beta);
  if (!c.is_none() && beta != 0.0) {
    py::array carr = as_array(c, op, "c");
    check_same_dtype(a, carr, op, "a", "c");
    try {
      py::module_::import("numpy").attr("copyto")(out, carr);
    } catch (py::error_already_set&) {
      throw py::value_error(std::string(op) + ": c of shape " + shape_str(carr) +
                            " does not broadcast to the output shape " + shape_str(out));
    }
  } else {
    beta_t = T(0);
  }
  if (out.size() == 0) return std::move(out);

  GemmArgs<T> g{M, N, Ka,
                static_cast<const T*>(a.data()), rs_a, cs_a,
                static_cast<const T*>(b.data()), rs_b, cs_b,
                out.mutable_data(), N,
                static_cast<T>(alpha), beta_t, 1};
  {
    py::gil_scoped_release release;
    gemm_batched<T>(g, batch, bs_a, bs_b, M * N);
  }
  return std::move(out);
}

py::array gemm_py(py::object a_obj, py::object b_obj, py::object c, bool trans_a, bool trans_b, double alpha,
                  double beta) {
  const char* op = "gemm";
  py::array a = as_array(a_obj, op, "a"), b = as_array(b_obj, op, "b");
  Float kind = float_kind(a, op, "a");
  float_kind(b, op, "b");
  check_same_dtype(a, b, op, "a", "b");
  check_ndim(a, {2, 3}, op, "a");
  check_ndim(b, {2, 3}, op, "b");
  return kind == Float::f32 ? gemm_typed<float>(a, b, c, trans_a, trans_b, alpha, beta)
                            : gemm_typed<double>(a, b, c, trans_a, trans_b, alpha, beta);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::kw_only(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        R"doc(alpha * op(a) @ op(b) + beta * c, with op(x) = x.T when trans_x.

a: (M, K) or (B, M, K) [(K, M) / (B, K, M) when trans_a]; b: (K, N) or (B, K, N)
[(N, K) / (B, N, K) when trans_b]; a 2-D operand is shared by every product of the
batch. c (optional) broadcasts to the output, (M, N) or (B, M, N). float32 or float64.
Strided and transposed views are read in place.)doc");
  m.def("_gemm_micro_tile", []() {
    const GemmKernels& k = pick_gemm_kernels();
    return py::make_tuple(k.mr, k.nr);
  });
}

}  // namespace pydl
