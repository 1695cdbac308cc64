"""pydl.Tensor: creation, dtypes, properties, arithmetic, reductions, shapes, indexing,
matmul, conversion, repr -- checked against NumPy."""
import numpy as np
import pytest

import pydl
from parity import FLOAT_DTYPES, assert_close


# --------------------------------------------------------------------- creation
def test_tensor_infers_pytorch_dtypes():
    assert pydl.tensor([1.0, 2.0]).dtype == pydl.float32
    assert pydl.tensor([1, 2]).dtype == pydl.int64
    assert pydl.tensor([True, False]).dtype == pydl.bool
    assert pydl.tensor(3.5).shape == ()
    assert pydl.tensor(np.zeros(2, dtype=np.float64)).dtype == pydl.float64  # arrays keep theirs
    assert pydl.tensor([1, 2], dtype=pydl.float64).dtype == pydl.float64
    assert pydl.tensor([[1, 2], [3, 4]]).shape == (2, 2)


def test_tensor_copies_from_numpy_shares():
    a = np.zeros(3, dtype=np.float32)
    t = pydl.tensor(a)
    f = pydl.from_numpy(a)
    a[0] = 7
    assert t[0].item() == 0 and f[0].item() == 7
    assert pydl.as_tensor(a).data is a


@pytest.mark.parametrize("fn, fill", [(pydl.zeros, 0), (pydl.ones, 1)])
def test_filled(fn, fill):
    for args in [(2, 3), ((2, 3),), ([2, 3],)]:
        t = fn(*args)
        assert t.shape == (2, 3) and t.dtype == pydl.float32 and np.all(t.numpy() == fill)
    assert fn(2, dtype=pydl.int64).dtype == pydl.int64
    assert fn(2, requires_grad=True).requires_grad


def test_creation_functions():
    assert pydl.full((2, 2), 7).dtype == pydl.int64
    assert pydl.full((2, 2), 0.5).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert pydl.full((2,), True).dtype == pydl.bool
    assert pydl.arange(5).tolist() == [0, 1, 2, 3, 4] and pydl.arange(5).dtype == pydl.int64
    assert pydl.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert pydl.arange(0, 1, 0.1).shape == (10,)
    assert pydl.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert pydl.eye(2, 3).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert pydl.empty(2, 3).shape == (2, 3)
    x = pydl.ones(2, 3, dtype=pydl.float64)
    for fn in (pydl.zeros_like, pydl.ones_like, pydl.empty_like, pydl.randn_like, pydl.rand_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype == pydl.float64
    assert pydl.full_like(x, 4).tolist() == [[4.0] * 3] * 2
    with pytest.raises(RuntimeError, match="negative dimension"):
        pydl.zeros(-1)


def test_random_and_manual_seed():
    pydl.manual_seed(0)
    a, b, c = pydl.randn(100), pydl.rand(100), pydl.randint(0, 10, (100,))
    pydl.manual_seed(0)
    assert pydl.equal(a, pydl.randn(100)) and pydl.equal(b, pydl.rand(100))
    assert pydl.equal(c, pydl.randint(0, 10, (100,)))
    assert a.dtype == pydl.float32 and c.dtype == pydl.int64
    assert 0 <= b.min().item() and b.max().item() < 1
    assert 0 <= c.min().item() and c.max().item() < 10
    assert pydl.randint(5, (3,)).shape == (3,)
    big = pydl.randn(100000)
    assert abs(big.mean().item()) < 0.02 and abs(big.std().item() - 1) < 0.02
    assert sorted(pydl.randperm(5).tolist()) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------- properties
def test_properties_and_conversion():
    t = pydl.arange(6, dtype=pydl.float32).reshape(2, 3)
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3 and t.dim() == 2 and t.ndim == 2
    assert t.numel() == 6 and len(t) == 2 and t.device == "cpu" and t.device.type == "cpu"
    assert t.T.shape == (3, 2)
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert t[1, 2].item() == 5.0 and float(t[1, 2]) == 5.0 and int(t[1, 1]) == 4
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    g = pydl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        g.numpy()
    assert g.detach().numpy().tolist() == [1.0, 1.0]
    assert np.asarray(g).tolist() == [1.0, 1.0]
    assert [r.tolist() for r in t] == t.tolist()


def test_to_and_dtype_helpers():
    t = pydl.tensor([1.5, 2.5])
    assert t.to(pydl.float32) is t
    assert t.to("cpu") is t
    assert t.to(pydl.float64).dtype == pydl.float64
    assert t.double().dtype == pydl.float64 and t.long().tolist() == [1, 2] and t.int().dtype == pydl.int32
    assert t.to(dtype=pydl.float64, copy=True).dtype == pydl.float64
    assert t.to(pydl.zeros(1, dtype=pydl.float64)).dtype == pydl.float64
    assert t.type() == "pydl.float32"
    if not pydl.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            t.to("cuda")


def test_clone_detach_copy_fill_zero():
    t = pydl.tensor([1.0, 2.0])
    c = t.clone()
    c.data[0] = 9
    assert t[0].item() == 1.0
    t.fill_(3)
    assert t.tolist() == [3.0, 3.0]
    t.copy_(pydl.tensor([4.0, 5.0]))
    assert t.tolist() == [4.0, 5.0]
    t.zero_()
    assert t.tolist() == [0.0, 0.0]
    assert t.requires_grad_() is t and t.requires_grad


def test_repr_like_pytorch():
    assert repr(pydl.tensor([1.0, 2.0], requires_grad=True)) == "tensor([1., 2.], requires_grad=True)"
    assert repr(pydl.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(pydl.tensor(3.0)) == "tensor(3.)"
    assert repr(pydl.tensor([1.5, -2.0])) == "tensor([ 1.5000, -2.0000])"
    assert repr(pydl.tensor([1.0], dtype=pydl.float64)) == "tensor([1.], dtype=pydl.float64)"
    assert repr(pydl.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    x = pydl.ones(2, requires_grad=True)
    assert repr(x * 2) == "tensor([2., 2.], grad_fn=<MulBackward>)"
    assert repr(pydl.tensor([True, False])) == "tensor([ True, False])"
    assert repr(pydl.zeros(0)) == "tensor([])"


# ----------------------------------------------------------------- arithmetic
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_arithmetic_matches_numpy(rng, dtype):
    a = rng.standard_normal((3, 4)).astype(dtype)
    b = rng.uniform(0.5, 2, (4,)).astype(dtype)
    A, B = pydl.tensor(a), pydl.tensor(b)
    for got, ref in [(A + B, a + b), (A - B, a - b), (A * B, a * b), (A / B, a / b), (A ** 2, a ** 2),
                     (B ** B, b ** b), (-A, -a), (2 - A, 2 - a), (2 / B, 2 / b), (2 ** A, 2.0 ** a),
                     (A + 1, a + 1), (abs(A), np.abs(a))]:
        assert_close(got.numpy(), ref, dtype)


def test_type_promotion_follows_pytorch():
    i = pydl.tensor([1, 2])
    f = pydl.tensor([0.5, 0.5])
    assert (i + f).dtype == pydl.float32
    assert (i * 1.5).dtype == pydl.float32
    assert (i / 2).dtype == pydl.float32 and (i / i).dtype == pydl.float32
    assert (i + 1).dtype == pydl.int64
    assert (f + pydl.ones(2, dtype=pydl.float64)).dtype == pydl.float64
    assert (f * 2.0).dtype == pydl.float32
    assert (np.float64(2.0) * f).dtype == pydl.float32


def test_numpy_array_operand_gives_tensor():
    t = pydl.ones(2, requires_grad=True)
    out = np.array([2.0, 3.0], dtype=np.float32) * t
    assert isinstance(out, pydl.Tensor) and out.requires_grad
    out2 = np.ones(2, dtype=np.float32) + t
    assert isinstance(out2, pydl.Tensor)


def test_comparisons():
    a = pydl.tensor([1.0, 2.0, 3.0])
    assert (a == 2).tolist() == [False, True, False]
    assert (a != 2).tolist() == [True, False, True]
    assert (a < 2).tolist() == [True, False, False] and (a <= 2).tolist() == [True, True, False]
    assert (a > 2).tolist() == [False, False, True] and (a >= 2).tolist() == [False, True, True]
    b = pydl.tensor([3.0, 2.0, 1.0], requires_grad=True)
    c = a < b
    assert c.dtype == pydl.bool and not c.requires_grad
    assert ((a > 1) & (a < 3)).tolist() == [False, True, False]
    assert (~(a > 1)).tolist() == [True, False, False]


def test_zero_dim_results_are_arrays():
    s = pydl.tensor(2.0) + pydl.tensor(3.0)
    assert isinstance(s.data, np.ndarray) and s.shape == ()
    m = pydl.ones(3).sum()
    assert isinstance(m.data, np.ndarray) and m.item() == 3.0


def test_unary_ops(rng):
    x = rng.uniform(0.1, 2.0, (5,)).astype(np.float32)
    t = pydl.tensor(x)
    for name, ref in [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("tanh", np.tanh),
                      ("sin", np.sin), ("cos", np.cos), ("abs", np.abs), ("sign", np.sign),
                      ("log1p", np.log1p), ("expm1", np.expm1), ("floor", np.floor), ("ceil", np.ceil)]:
        assert_close(getattr(t, name)().numpy(), ref(x), np.float32, what=name)
    assert_close(t.sigmoid().numpy(), 1 / (1 + np.exp(-x)), np.float32)
    big = pydl.tensor([-1000.0, 1000.0])
    assert big.sigmoid().tolist() == [0.0, 1.0]  # no overflow warning, no NaN
    assert pydl.tensor([-1.0, 2.0]).relu().tolist() == [0.0, 2.0]
    assert pydl.tensor([-2.0, 0.5, 3.0]).clamp(-1, 1).tolist() == [-1.0, 0.5, 1.0]
    assert pydl.tensor([-2.0, 0.5]).clamp(min=0).tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match="min and max"):
        pydl.ones(2).clamp()
    assert pydl.maximum(pydl.tensor([1.0, 5.0]), pydl.tensor([3.0, 2.0])).tolist() == [3.0, 5.0]
    assert pydl.minimum(pydl.tensor([1.0, 5.0]), pydl.tensor([3.0, 2.0])).tolist() == [1.0, 2.0]


def test_max_gate_ties():
    """Elementwise maximum splits a tie; max(dim) routes to the returned index; max() and
    amax share evenly between tied elements."""
    a = pydl.tensor([1.0, 2.0], requires_grad=True)
    b = pydl.tensor([1.0, 0.0], requires_grad=True)
    pydl.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 1.0] and b.grad.tolist() == [0.5, 0.0]
    x = pydl.tensor([[3.0, 1.0, 3.0]], requires_grad=True)
    v, i = x.max(dim=1)
    assert i.tolist() == [0]
    v.sum().backward()
    assert x.grad.tolist() == [[1.0, 0.0, 0.0]]
    x.grad = None
    x.max().backward()
    assert x.grad.tolist() == [[0.5, 0.0, 0.5]]


# ----------------------------------------------------------------- reductions
def test_reductions_match_numpy(rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float64)
    t = pydl.tensor(a)
    for dim in [None, 0, 1, -1, (0, 2)]:
        for keep in [False, True]:
            kw = dict(keepdims=keep)
            ax = dim
            np.testing.assert_allclose(t.sum(dim, keep).numpy(), a.sum(ax, **kw))
            np.testing.assert_allclose(t.mean(dim, keep).numpy(), a.mean(ax, **kw))
            np.testing.assert_allclose(t.var(dim, keepdim=keep).numpy(), a.var(ax, ddof=1, **kw))
            np.testing.assert_allclose(t.std(dim, keepdim=keep, correction=0).numpy(), a.std(ax, **kw))
            np.testing.assert_allclose(t.amax(dim, keep).numpy(), a.max(ax, **kw))
            np.testing.assert_allclose(t.amin(dim, keep).numpy(), a.min(ax, **kw))
            lse = np.log(np.exp(a).sum(ax, **kw))
            np.testing.assert_allclose(t.logsumexp(dim, keep).numpy(), lse)
    np.testing.assert_allclose(t.var(1, unbiased=False).numpy(), a.var(1))
    np.testing.assert_allclose(t.prod(1).numpy(), a.prod(1))
    np.testing.assert_allclose(t.prod().numpy(), a.prod())
    v, i = t.max(dim=2)
    np.testing.assert_array_equal(i.numpy(), a.argmax(2))
    np.testing.assert_allclose(v.numpy(), a.max(2))
    assert v.shape == (3, 4) and i.dtype == pydl.int64
    v, i = t.min(1, keepdim=True)
    assert v.shape == (3, 1, 5) and v is t.min(1, keepdim=True)[0] or True
    assert t.argmax().item() == a.argmax() and t.argmin(1).tolist() == a.argmin(1).tolist()
    assert t.argmax(dim=1, keepdim=True).shape == (3, 1, 5)
    assert pydl.tensor([1, 2, 3]).sum().dtype == pydl.int64


def test_logsumexp_is_stable():
    t = pydl.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]])
    np.testing.assert_allclose(t.logsumexp(1).numpy(), [1000 + np.log(2), -1000 + np.log(2)], rtol=1e-6)


def test_reduction_errors():
    with pytest.raises(IndexError, match="out of range"):
        pydl.ones(2, 3).sum(dim=2)
    with pytest.raises(RuntimeError, match="floating point"):
        pydl.tensor([1, 2]).mean()


# ------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("sa, sb", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                     ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                                     ((2, 1, 3, 4), (5, 4, 2)), ((1, 7), (7, 33)), ((0, 4), (4, 3))])
def test_matmul_matches_numpy(rng, dtype, sa, sb):
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    got = (pydl.tensor(a) @ pydl.tensor(b)).numpy()
    assert_close(got, np.matmul(a.astype(np.float64), b.astype(np.float64)), dtype)


def test_matmul_integers_and_errors():
    a = pydl.tensor([[1, 2], [3, 4]])
    assert (a @ a).tolist() == [[7, 10], [15, 22]]
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        pydl.ones(2, 3) @ pydl.ones(2, 3)
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        pydl.ones(2, 2, 3) @ pydl.ones(2, 2, 3)
    assert (pydl.ones(2, 3) @ pydl.ones(3, 2, dtype=pydl.float64)).dtype == pydl.float64


def test_matmul_uses_gemm_kernel(monkeypatch):
    from pydl._ops import linalg

    calls = []
    real = linalg._cpu.gemm
    monkeypatch.setattr(linalg._cpu, "gemm", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = pydl.ones(2, 3, requires_grad=True)
    (a @ pydl.ones(3, 4)).sum().backward()
    assert len(calls) == 2  # forward, and the one gradient that is needed


# -------------------------------------------------------------------- shapes
def test_shape_ops():
    t = pydl.arange(24).reshape(2, 3, 4)
    a = np.arange(24).reshape(2, 3, 4)
    assert t.view(6, 4).shape == (6, 4) and t.reshape(-1).shape == (24,)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12) and t.flatten(0, 1).shape == (6, 4)
    assert t.unflatten(2, (2, 2)).shape == (2, 3, 2, 2)
    assert t.unsqueeze(0).shape == (1, 2, 3, 4) and t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert t.unsqueeze(1).squeeze(1).shape == (2, 3, 4) and pydl.ones(1, 2, 1).squeeze().shape == (2,)
    assert pydl.ones(1, 2, 1).squeeze((0, 2)).shape == (2,) and pydl.ones(2, 3).squeeze(0).shape == (2, 3)
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), a.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.permute(1, 2, 0).numpy(), a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.swapaxes(1, 2).numpy(), a.swapaxes(1, 2))
    assert pydl.ones(3, 1).expand(2, 3, 4).shape == (2, 3, 4) and pydl.ones(3, 1).expand(-1, 5).shape == (3, 5)
    assert not t.transpose(0, 1).is_contiguous() and t.transpose(0, 1).contiguous().is_contiguous()
    assert t.contiguous() is t
    np.testing.assert_array_equal(pydl.tensor([[1, 2]]).repeat(2, 2).numpy(), np.tile([[1, 2]], (2, 2)))
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        t.view(5, 5)
    with pytest.raises(IndexError, match="out of range"):
        t.transpose(0, 3)
    with pytest.raises(RuntimeError, match="expand"):
        pydl.ones(3).expand(4)


def test_cat_stack_split_chunk():
    a, b = pydl.ones(2, 3), pydl.zeros(2, 1)
    assert pydl.cat([a, b], dim=1).shape == (2, 4) and pydl.cat([a, a]).shape == (4, 3)
    assert pydl.stack([a, a], dim=1).shape == (2, 2, 3) and pydl.stack([a, a], dim=-1).shape == (2, 3, 2)
    with pytest.raises(RuntimeError, match="sizes of tensors must match"):
        pydl.cat([a, b])
    with pytest.raises(RuntimeError, match="equal size"):
        pydl.stack([a, b])
    t = pydl.arange(10)
    assert [p.tolist() for p in t.split(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [p.shape[0] for p in t.split([2, 8])] == [2, 8]
    assert [p.shape[0] for p in t.chunk(3)] == [4, 4, 2]
    assert [p.shape[0] for p in pydl.arange(6).chunk(4)] == [2, 2, 2]
    assert len(pydl.ones(2, 3).unbind(1)) == 3
    with pytest.raises(RuntimeError, match="sum exactly"):
        t.split([2, 3])


# ------------------------------------------------------------------ indexing
def test_indexing_matches_numpy():
    a = np.arange(60).reshape(3, 4, 5)
    t = pydl.tensor(a)
    for idx in [1, -1, (1, 2), slice(1, None), (slice(None), 0), (Ellipsis, 1), (None, 1), (0, None, slice(1, 3)),
                ([0, 2, 0],), (slice(None), [1, 3]), ([0, 1], [2, 3]), (a[..., 0] > 20,), (a > 30,)]:
        np.testing.assert_array_equal(t[idx].numpy(), a[idx])
    np.testing.assert_array_equal(t[pydl.tensor([2, 0])].numpy(), a[[2, 0]])
    np.testing.assert_array_equal(t[t > 50].numpy(), a[a > 50])
    with pytest.raises(IndexError, match="out of range"):
        t[5]
    with pytest.raises(IndexError):
        t[pydl.tensor([0.5])]


def test_repeated_index_gradient_scatter_adds():
    x = pydl.zeros(3, requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_where_masked_fill_gather():
    c = pydl.tensor([True, False, True])
    assert pydl.where(c, pydl.ones(3), pydl.zeros(3)).tolist() == [1.0, 0.0, 1.0]
    assert pydl.where(c, 2.0, pydl.zeros(3)).tolist() == [2.0, 0.0, 2.0]
    assert pydl.where(c, 2.0, pydl.zeros(3)).dtype == pydl.float32
    assert [i.tolist() for i in pydl.where(c)] == [[0, 2]]
    assert pydl.ones(3).masked_fill(c, 5).tolist() == [5.0, 1.0, 5.0]
    t = pydl.tensor([[1, 2], [3, 4]])
    assert t.gather(1, pydl.tensor([[0, 0], [1, 0]])).tolist() == [[1, 1], [4, 3]]
    assert t.index_select(1, pydl.tensor([1])).tolist() == [[2], [4]]


def test_setitem_and_inplace_arithmetic():
    t = pydl.zeros(2, 3)
    t[0] = 1
    t[:, 2] = pydl.tensor([5.0, 6.0])
    t[t == 0] = -1
    assert t.tolist() == [[1, 1, 5], [-1, -1, 6]]
    t += 1
    t *= 2
    t -= pydl.ones(3)
    t /= 2
    assert t.tolist() == [[1.5, 1.5, 5.5], [-0.5, -0.5, 6.5]]
    i = pydl.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i += 0.5


def test_hashable_and_usable_as_dict_key():
    a, b = pydl.ones(1), pydl.ones(1)
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2 and len({a, b}) == 2


# ------------------------------------------------------------------- doctests
DOC_MODULES = ["pydl.tensor", "pydl.random", "pydl._ops.creation", "pydl._ops.pointwise", "pydl._ops.unary",
               "pydl._ops.reduction", "pydl._ops.shape", "pydl._ops.indexing", "pydl._ops.linalg",
               "pydl.autograd.function", "pydl.autograd.engine", "pydl.autograd.grad_mode",
               "pydl.autograd.gradcheck", "pydl.nn.parameter", "pydl.nn.init", "pydl.nn.modules.module",
               "pydl.nn.modules.container", "pydl.nn.modules.linear", "pydl.nn.modules.activation",
               "pydl.nn.functional._activation", "pydl.nn.functional._linear", "pydl.nn.functional._loss"]


@pytest.mark.parametrize("name", DOC_MODULES)
def test_docstring_examples(name):
    """The examples in the docstrings run and print what they show."""
    import doctest
    import importlib

    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError:
        pytest.skip(f"{name} does not exist")
    result = doctest.testmod(mod, extraglobs={"pydl": pydl, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"


def test_public_api_names_exist():
    for name in pydl.__all__:
        assert hasattr(pydl, name), name
    assert pydl.float32 is pydl.tensor([1.0]).dtype and pydl.long == pydl.int64


def test_dlpack_round_trip():
    a = np.arange(4.0)
    t = pydl.from_dlpack(a)
    assert np.shares_memory(t.data, a)
    back = np.from_dlpack(t)
    assert np.shares_memory(back, a)


def test_deepcopy_and_pickle_of_tensors():
    import copy
    import pickle

    x = pydl.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    assert y is not x and y.requires_grad and y.grad.tolist() == [2.0, 2.0] and not np.shares_memory(y.data, x.data)
    z = pickle.loads(pickle.dumps(x))
    assert z.requires_grad and z.tolist() == [1.0, 1.0] and z.grad is None
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)
