// embedding: row lookup and its sparse backward, with the binding.
//
//   forward   out[p, :] = weight[idx[p], :]                    for every position p
//   backward  grad_weight[v, :] = sum_{p : idx[p] == v} grad_out[p, :]   (0 for padding_idx)
//
// Legend: V rows of the table (num_embeddings), E features (embedding_dim), N positions
// (every dimension of the indices flattened).
//
// Algorithm: the forward copies rows, positions split over threads. The backward must
// add up the positions that share a row without races and without depending on the
// thread count: the positions are bucketed by row with a counting sort (stable, so each
// bucket lists its positions in increasing order), then threads split the ROWS and each
// row sums its bucket in that fixed order -- the result is bitwise the same for any
// thread count, with no atomics. Rows nobody picked are written as zeros.
//
// Workspace: the bucket offsets (V + 1) and the sorted positions (N), int64.
//
// Checked by tests/kernels/test_embedding.py against the float64 reference
// (pydl/kernels/reference/embedding.py): repeated and padding indices, every integer
// dtype, empty inputs, 1 and 2 threads, out-of-range indices.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {

using Shape = std::vector<py::ssize_t>;

py::array_t<int64_t, py::array::c_style> checked_indices(const py::object& obj, const char* op) {
  py::array idx = as_array(obj, op, "indices");
  const char kind = idx.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(op) + ": indices must be integers, got " + dtype_str(idx));
  return contiguous<int64_t>(idx);
}

// Throws IndexError naming the first index outside [0, V) and where it is.
void check_range(const py::array_t<int64_t, py::array::c_style>& idx, int64_t V, const char* op) {
  const int64_t* p = idx.data();
  for (py::ssize_t n = 0; n < idx.size(); ++n) {
    if (p[n] >= 0 && p[n] < V) continue;
    std::string where;
    py::ssize_t rem = n;
    for (py::ssize_t d = idx.ndim() - 1; d >= 0; --d) {
      where = std::to_string(rem % idx.shape(d)) + (where.empty() ? "" : ", ") + where;
      rem /= idx.shape(d);
    }
    throw py::index_error(std::string(op) + ": index " + std::to_string(p[n]) + " out of range for num_embeddings " +
                          std::to_string(V) + " (at indices[" + where + "])");
  }
}

int64_t checked_padding(const py::object& padding_idx, int64_t V, const char* op) {
  if (padding_idx.is_none()) return -1;
  const int64_t p = padding_idx.cast<int64_t>();
  if (p < -V || p >= V)
    throw py::value_error(std::string(op) + ": padding_idx " + std::to_string(p) + " must be within num_embeddings " +
                          std::to_string(V));
  return p < 0 ? p + V : p;
}

template <typename T>
py::array forward_typed(const py::array& w_in, const py::array_t<int64_t, py::array::c_style>& idx) {
  auto w = contiguous<T>(w_in);
  const int64_t E = w.shape(1), N = idx.size();
  Shape shape(idx.shape(), idx.shape() + idx.ndim());
  shape.push_back(E);
  py::array_t<T, py::array::c_style> out(shape);
  const T* src = w.data();
  const int64_t* ip = idx.data();
  T* dst = out.mutable_data();
  if (N == 0 || E == 0) return std::move(out);
  {
    py::gil_scoped_release release;
    const int t = threads_for(N * E, int64_t(1) << 15);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t p = 0; p < N; ++p) std::memcpy(dst + p * E, src + ip[p] * E, static_cast<size_t>(E) * sizeof(T));
  }
  return std::move(out);
}

template <typename T>
py::array backward_typed(const py::array& g_in, const py::array_t<int64_t, py::array::c_style>& idx, int64_t V,
                         int64_t padding) {
  auto g = contiguous<T>(g_in);
  const int64_t E = g.shape(g.ndim() - 1), N = idx.size();
  py::array_t<T, py::array::c_style> grad(Shape{V, E});
  const T* gp = g.data();
  const int64_t* ip = idx.data();
  T* out = grad.mutable_data();
  if (V * E == 0) return std::move(grad);
  {
    py::gil_scoped_release release;
    // Counting sort of the positions by row: bucket v is order[start[v] : start[v + 1]].
    std::vector<int64_t> start(static_cast<size_t>(V + 1), 0), order(static_cast<size_t>(N));
    for (int64_t p = 0; p < N; ++p) ++start[ip[p] + 1];
    for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t p = 0; p < N; ++p) order[fill[ip[p]]++] = p;
    const int t = threads_for(N * E + V * E / 8, int64_t(1) << 15);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t v = 0; v < V; ++v) {
      T* row = out + v * E;
      std::fill(row, row + E, T(0));
      if (v == padding) continue;
      for (int64_t k = start[v]; k < start[v + 1]; ++k) {
        const T* src = gp + order[k] * E;
        for (int64_t e = 0; e < E; ++e) row[e] += src[e];
      }
    }
  }
  return std::move(grad);
}

py::array embedding_forward_py(py::object weight, py::object indices, py::object padding_idx) {
  const char* op = "embedding_forward";
  py::array w = as_array(weight, op, "weight");
  const Float kind = float_kind(w, op, "weight");
  if (w.ndim() != 2)
    throw py::value_error(std::string(op) +
                          ": weight must have 2 dimensions (num_embeddings, embedding_dim), got shape " + shape_str(w));
  auto idx = checked_indices(indices, op);
  checked_padding(padding_idx, w.shape(0), op);
  check_range(idx, w.shape(0), op);
  return kind == Float::f32 ? forward_typed<float>(w, idx) : forward_typed<double>(w, idx);
}

py::array embedding_backward_py(py::object grad_out, py::object indices, int64_t num_embeddings,
                                py::object padding_idx) {
  const char* op = "embedding_backward";
  py::array g = as_array(grad_out, op, "grad_out");
  const Float kind = float_kind(g, op, "grad_out");
  if (num_embeddings < 0)
    throw py::value_error(std::string(op) + ": num_embeddings must be >= 0, got " + std::to_string(num_embeddings));
  auto idx = checked_indices(indices, op);
  bool ok = g.ndim() == idx.ndim() + 1;
  for (py::ssize_t d = 0; ok && d < idx.ndim(); ++d) ok = g.shape(d) == idx.shape(d);
  if (!ok)
    throw py::value_error(std::string(op) + ": grad_out must have shape indices.shape + (embedding_dim,) = " +
                          shape_str(idx) + " + (E,), got " + shape_str(g));
  const int64_t padding = checked_padding(padding_idx, num_embeddings, op);
  check_range(idx, num_embeddings, op);
  return kind == Float::f32 ? backward_typed<float>(g, idx, num_embeddings, padding)
                            : backward_typed<double>(g, idx, num_embeddings, padding);
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding_forward", &embedding_forward_py, py::arg("weight"), py::arg("indices"),
        py::arg("padding_idx") = py::none(),
        R"doc(Rows of weight picked by indices: (V, E), (*) integers in [0, V) -> (*, E).

An index outside [0, V) raises IndexError naming it and its position.)doc");
  m.def("embedding_backward", &embedding_backward_py, py::arg("grad_out"), py::arg("indices"),
        py::arg("num_embeddings"), py::arg("padding_idx") = py::none(),
        R"doc(Gradient of the table: grad_out (*, E), indices (*) -> grad_weight (V, E).

Repeated indices add up, in position order (the same bits for any thread count); the
padding_idx row gets 0.)doc");
}

}  // namespace pydl
