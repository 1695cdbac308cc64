// attention binding: argument checks, masks, output allocation. The fused kernels are
// in attention_isa.cpp (see the block comment there for the formulas and the algorithm).
//
// Masks arrive as PyTorch gives them: boolean (True = attend) or floating point (added to
// the scores), broadcastable to (..., L, S). A boolean mask is turned into an additive
// one of its own (unbroadcast) shape, 0 / -inf, so the kernels see one kind; broadcasting
// is done with zero strides and a per-head offset, never by expanding the mask.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pydl/attention.h"
#include "pydl/checks.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {

using Shape = std::vector<py::ssize_t>;

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

std::string dims_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

py::array checked_operand(const py::object& obj, const char* op, const char* name) {
  py::array a = as_array(obj, op, name);
  float_kind(a, op, name);
  if (a.ndim() < 2)
    throw py::value_error(std::string(op) + ": " + name +
                          " must have at least 2 dimensions (..., length, features), got shape " + shape_str(a));
  return a;
}

// Everything a kernel call needs, with the arrays that own the memory kept alive.
template <typename T>
struct Call {
  AttentionArgs<T> args{};
  Shape lead;  // the leading (batch, head, ...) dimensions
  py::array_t<T, py::array::c_style> q, k, v, mask;
  std::vector<int64_t> mask_offset;
};

// attn_mask -> an additive T mask of its own shape, its L and S strides and the offset of
// every head; throws when it does not broadcast to lead + (L, S).
template <typename T>
void prepare_mask(Call<T>& c, const py::object& mask_obj, const char* op) {
  if (mask_obj.is_none()) return;
  py::array m = as_array(mask_obj, op, "attn_mask");
  const int64_t L = c.args.L, S = c.args.S;
  Shape target = c.lead;
  target.push_back(L);
  target.push_back(S);
  const int nd = static_cast<int>(target.size());
  bool fits = m.ndim() <= nd;
  for (int i = 0; fits && i < m.ndim(); ++i) {
    const py::ssize_t have = m.shape(m.ndim() - 1 - i), want = target[nd - 1 - i];
    fits = have == 1 || have == want;
  }
  if (!fits)
    throw py::value_error(std::string(op) + ": attn_mask of shape " + shape_str(m) +
                          " does not broadcast to the scores' shape " + dims_str(target) + " (..., L, S)");
  const char kind = m.dtype().kind();
  if (kind == 'b') {
    auto mb = contiguous<bool>(m);
    py::array_t<T, py::array::c_style> add(shape_of(mb));
    const bool* src = mb.data();
    T* dst = add.mutable_data();
    for (py::ssize_t i = 0; i < mb.size(); ++i) dst[i] = src[i] ? T(0) : -std::numeric_limits<T>::infinity();
    c.mask = add;
  } else if (kind == 'f') {
    c.mask = contiguous<T>(m);
  } else {
    throw py::type_error(std::string(op) + ": attn_mask must be boolean or floating point, got " + dtype_str(m));
  }
  // Element strides of the mask seen as a target-shaped array (0 along broadcast axes).
  std::vector<int64_t> stride(nd, 0);
  int64_t s = 1;
  for (int i = 0; i < c.mask.ndim(); ++i) {
    const int axis = c.mask.ndim() - 1 - i;
    const py::ssize_t n = c.mask.shape(axis);
    if (n != 1) stride[nd - 1 - i] = s;
    s *= n;
  }
  c.args.mask_ls = stride[nd - 2];
  c.args.mask_ss = stride[nd - 1];
  c.mask_offset.assign(static_cast<size_t>(c.args.BH), 0);
  for (int64_t bh = 0; bh < c.args.BH; ++bh) {
    int64_t rem = bh, off = 0;
    for (int axis = nd - 3; axis >= 0; --axis) {
      off += (rem % c.lead[axis]) * stride[axis];
      rem /= c.lead[axis];
    }
    c.mask_offset[static_cast<size_t>(bh)] = off;
  }
  c.args.mask = c.mask.data();
  c.args.mask_offset = c.mask_offset.data();
}

template <typename T>
Call<T> prepare(const py::array& q, const py::array& k, const py::array& v, const py::object& mask, bool is_causal,
                const py::object& scale, const char* op) {
  Call<T> c;
  c.lead.assign(q.shape(), q.shape() + q.ndim() - 2);
  c.q = contiguous<T>(q);
  c.k = contiguous<T>(k);
  c.v = contiguous<T>(v);
  AttentionArgs<T>& a = c.args;
  a.BH = 1;
  for (py::ssize_t n : c.lead) a.BH *= n;
  a.L = q.shape(q.ndim() - 2);
  a.D = q.shape(q.ndim() - 1);
  a.S = k.shape(k.ndim() - 2);
  a.Dv = v.shape(v.ndim() - 1);
  a.q = c.q.data();
  a.k = c.k.data();
  a.v = c.v.data();
  a.causal = is_causal;
  a.scale = static_cast<T>(scale.is_none() ? 1.0 / std::sqrt(static_cast<double>(a.D)) : scale.cast<double>());
  prepare_mask(c, mask, op);
  // A worker per ~4M multiply-adds: small problems stay on the caller's thread.
  const int64_t flops = a.BH * a.L * a.S * (a.D + a.Dv);
  a.threads = threads_for(flops, int64_t(1) << 22);
  return c;
}

// q, k, v: checked for kind, rank, matching leading dimensions and feature counts.
void check_qkv(const py::array& q, const py::array& k, const py::array& v, const char* op) {
  check_same_dtype(q, k, op, "query", "key");
  check_same_dtype(q, v, op, "query", "value");
  const Shape sq = shape_of(q), sk = shape_of(k), sv = shape_of(v);
  if (!std::equal(sq.begin(), sq.end() - 2, sk.begin(), sk.end() - 2) ||
      !std::equal(sq.begin(), sq.end() - 2, sv.begin(), sv.end() - 2))
    throw py::value_error(std::string(op) + ": query, key and value must have the same leading dimensions, got " +
                          dims_str(sq) + ", " + dims_str(sk) + " and " + dims_str(sv));
  if (sk.back() != sq.back())
    throw py::value_error(std::string(op) + ": key has " + std::to_string(sk.back()) + " features but query has " +
                          std::to_string(sq.back()));
  if (sq.back() == 0)
    throw py::value_error(std::string(op) + ": query and key must have at least one feature, got shape " +
                          dims_str(sq));
  if (sv[sv.size() - 2] != sk[sk.size() - 2])
    throw py::value_error(std::string(op) + ": value has " + std::to_string(sv[sv.size() - 2]) +
                          " positions but key has " + std::to_string(sk[sk.size() - 2]));
}

template <typename T>
py::tuple forward_typed(const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
                        bool is_causal, const py::object& scale) {
  Call<T> c = prepare<T>(q, k, v, mask, is_causal, scale, "attention_forward");
  AttentionArgs<T>& a = c.args;
  Shape out_shape = c.lead, lse_shape = c.lead;
  out_shape.push_back(a.L);
  out_shape.push_back(a.Dv);
  lse_shape.push_back(a.L);
  py::array_t<T, py::array::c_style> out(out_shape), lse(lse_shape);
  if (out.size() == 0 && lse.size() == 0) return py::make_tuple(out, lse);
  a.out = out.mutable_data();
  a.lse = lse.mutable_data();
  {
    py::gil_scoped_release release;
    pick_attention<T>().forward(a);
  }
  return py::make_tuple(out, lse);
}

py::tuple attention_forward_py(py::object q_obj, py::object k_obj, py::object v_obj, py::object attn_mask,
                               bool is_causal, py::object scale) {
  const char* op = "attention_forward";
  py::array q = checked_operand(q_obj, op, "query"), k = checked_operand(k_obj, op, "key"),
            v = checked_operand(v_obj, op, "value");
  check_qkv(q, k, v, op);
  if (float_kind(q, op, "query") == Float::f32) return forward_typed<float>(q, k, v, attn_mask, is_causal, scale);
  return forward_typed<double>(q, k, v, attn_mask, is_causal, scale);
}

template <typename T>
py::tuple backward_typed(const py::array& g, const py::array& q, const py::array& k, const py::array& v,
                         const py::array& out, const py::array& lse, const py::object& mask, bool is_causal,
                         const py::object& scale) {
  Call<T> c = prepare<T>(q, k, v, mask, is_causal, scale, "attention_backward");
  AttentionArgs<T>& a = c.args;
  auto gc = contiguous<T>(g);
  auto oc = contiguous<T>(out);
  auto lc = contiguous<T>(lse);
  py::array_t<T, py::array::c_style> gq(shape_of(q)), gk(shape_of(k)), gv(shape_of(v));
  if (gq.size() + gk.size() + gv.size() == 0) return py::make_tuple(gq, gk, gv);
  a.out = const_cast<T*>(oc.data());
  a.lse = const_cast<T*>(lc.data());
  a.grad_out = gc.data();
  a.grad_q = gq.mutable_data();
  a.grad_k = gk.mutable_data();
  a.grad_v = gv.mutable_data();
  {
    py::gil_scoped_release release;
    pick_attention<T>().backward(a);
  }
  return py::make_tuple(gq, gk, gv);
}

py::tuple attention_backward_py(py::object g_obj, py::object q_obj, py::object k_obj, py::object v_obj,
                                py::object out_obj, py::object lse_obj, py::object attn_mask, bool is_causal,
                                py::object scale) {
  const char* op = "attention_backward";
  py::array q = checked_operand(q_obj, op, "query"), k = checked_operand(k_obj, op, "key"),
            v = checked_operand(v_obj, op, "value");
  check_qkv(q, k, v, op);
  py::array g = as_array(g_obj, op, "grad_out"), out = as_array(out_obj, op, "out"),
            lse = as_array(lse_obj, op, "lse");
  Shape want(q.shape(), q.shape() + q.ndim() - 1);
  want.push_back(v.shape(v.ndim() - 1));
  Shape want_lse(q.shape(), q.shape() + q.ndim() - 1);
  for (auto [arr, name, w] : {std::make_tuple(&g, "grad_out", &want), std::make_tuple(&out, "out", &want),
                              std::make_tuple(&lse, "lse", &want_lse)}) {
    float_kind(*arr, op, name);
    check_same_dtype(q, *arr, op, "query", name);
    if (shape_of(*arr) != *w)
      throw py::value_error(std::string(op) + ": " + name + " must have shape " + dims_str(*w) + ", got " +
                            shape_str(*arr));
  }
  if (float_kind(q, op, "query") == Float::f32)
    return backward_typed<float>(g, q, k, v, out, lse, attn_mask, is_causal, scale);
  return backward_typed<double>(g, q, k, v, out, lse, attn_mask, is_causal, scale);
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention_forward", &attention_forward_py, py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("attn_mask") = py::none(), py::arg("is_causal") = false, py::arg("scale") = py::none(),
        R"doc(Fused scaled dot-product attention: (..., L, D), (..., S, D), (..., S, Dv) -> (out, lse).

out is (..., L, Dv), lse is (..., L).

out = softmax(q k^T * scale + mask) v, computed in tiles with an online softmax (the (L, S)
matrices are never formed); lse is the log-sum-exp of each row of the masked scores (-inf
for a fully masked row, whose output is 0, as in PyTorch). The leading dimensions (batch,
heads, ...) must be the same for q, k and v. attn_mask: bool (True = attend) or float
(added), broadcastable to (..., L, S). is_causal: query i sees key j only when j <= i
(upper-left aligned when L != S). scale defaults to 1 / sqrt(D). float32 or float64.)doc");
  m.def("attention_backward", &attention_backward_py, py::arg("grad_out"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("attn_mask") = py::none(),
        py::arg("is_causal") = false, py::arg("scale") = py::none(),
        R"doc(Gradients (grad_q, grad_k, grad_v) of attention_forward, from its out and lse.

The probabilities are recomputed tile by tile from lse; extra memory is O(L + S) per head.)doc");
}

}  // namespace pydl
