// pydl._C: the CPU kernels. Each family registers its functions from its own file
// (csrc/cpu/<family>.cpp); this file adds the configuration queries.
#include <omp.h>
#include <pybind11/pybind11.h>

#include "pydl/isa.h"
#include "pydl/parallel.h"

namespace py = pybind11;

namespace pydl {
void bind_gemm(py::module_& m);
void bind_softmax(py::module_& m);
void bind_pool(py::module_& m);
void bind_norm(py::module_& m);
void bind_upsample(py::module_& m);
void bind_dropout(py::module_& m);
void bind_pointwise(py::module_& m);
void bind_conv(py::module_& m);
void bind_attention(py::module_& m);
void bind_rnn(py::module_& m);
void bind_embedding(py::module_& m);
void bind_boxes(py::module_& m);
}  // namespace pydl

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydl's CPU kernels (private: use pydl.kernels)";
  pydl::bind_gemm(m);
  pydl::bind_softmax(m);
  pydl::bind_pool(m);
  pydl::bind_norm(m);
  pydl::bind_upsample(m);
  pydl::bind_dropout(m);
  pydl::bind_pointwise(m);
  pydl::bind_conv(m);
  pydl::bind_attention(m);
  pydl::bind_rnn(m);
  pydl::bind_embedding(m);
  pydl::bind_boxes(m);

  m.def("get_num_threads", &pydl::num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be a positive integer, got " + std::to_string(n));
    pydl::set_num_threads(n);
  });
  m.def("_isa", []() { return pydl::isa_name(pydl::active_isa()); });
  m.def("_best_isa", []() { return pydl::isa_name(pydl::best_supported_isa()); });
  m.def("_set_isa", [](const std::string& name) {
    try {
      pydl::set_active_isa(name.c_str());
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  py::dict info;
  info["version"] = PYDL_VERSION;
  info["compiler"] = PYDL_COMPILER;
  info["native"] = static_cast<bool>(PYDL_NATIVE_BUILD);
  info["openmp"] = _OPENMP;
  info["omp_max_threads"] = omp_get_max_threads();
  m.attr("build_info") = info;
}
