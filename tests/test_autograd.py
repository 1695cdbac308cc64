"""Autograd: gradcheck on every differentiable op (float64), the engine's rules and errors,
and the regressions that bit micrograd and tinygrad."""
import gc
import weakref

import numpy as np
import pytest

import pydl
from pydl.autograd import GradcheckError, gradcheck

F64 = pydl.float64


def leaf(*shape, low=None, seed=0):
    """A float64 leaf; ``low`` keeps values away from a kink (|x| >= low)."""
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    x = rng.standard_normal(shape)
    if low is not None:
        x = np.sign(x) * (np.abs(x) + low)
    return pydl.tensor(x, dtype=F64, requires_grad=True)


def positive(*shape, seed=0):
    rng = np.random.default_rng(seed + 11 + sum(shape))
    return pydl.tensor(rng.uniform(0.5, 2.0, shape), dtype=F64, requires_grad=True)


def distinct(*shape, seed=0):
    """Values well apart, so that max / sort / clamp have no ties near the step."""
    rng = np.random.default_rng(seed + 3)
    vals = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.37 - 2.0
    return pydl.tensor(vals, dtype=F64, requires_grad=True)


# name -> (function, inputs factory). Every differentiable op of pydl.Tensor is here.
OPS = {
    # the gates
    "add": (lambda a, b: a + b, lambda: (leaf(3, 4), leaf(3, 4, seed=1))),
    "add_broadcast": (lambda a, b: a + b, lambda: (leaf(3, 1, 4), leaf(5, 1))),
    "add_scalar": (lambda a: 2.5 + a + 1, lambda: (leaf(3),)),
    "sub": (lambda a, b: a - b, lambda: (leaf(2, 3), leaf(3))),
    "rsub": (lambda a: 1.0 - a, lambda: (leaf(2, 3),)),
    "mul": (lambda a, b: a * b, lambda: (leaf(2, 3), leaf(2, 1))),
    "mul_scalar": (lambda a: 3 * a * 0.5, lambda: (leaf(4),)),
    "div": (lambda a, b: a / b, lambda: (leaf(2, 3), positive(3))),
    "rdiv": (lambda a: 2.0 / a, lambda: (positive(2, 3),)),
    "neg": (lambda a: -a, lambda: (leaf(3),)),
    "pow_scalar": (lambda a: a ** 3, lambda: (leaf(3, 2),)),
    "pow_square": (lambda a: a ** 2, lambda: (leaf(3, 2),)),
    "pow_fractional": (lambda a: a ** 1.5, lambda: (positive(3),)),
    "pow_tensor": (lambda a, b: a ** b, lambda: (positive(2, 3), leaf(3))),
    "rpow": (lambda a: 2.0 ** a, lambda: (leaf(4),)),
    "maximum": (lambda a, b: pydl.maximum(a, b), lambda: (leaf(3, 4), leaf(3, 4, seed=5))),
    "minimum": (lambda a, b: pydl.minimum(a, b), lambda: (leaf(3, 4), leaf(4, seed=5))),
    # unary
    "exp": (lambda a: a.exp(), lambda: (leaf(3, 2),)),
    "log": (lambda a: a.log(), lambda: (positive(3, 2),)),
    "log1p": (lambda a: a.log1p(), lambda: (positive(3),)),
    "expm1": (lambda a: a.expm1(), lambda: (leaf(3),)),
    "sqrt": (lambda a: a.sqrt(), lambda: (positive(3, 2),)),
    "rsqrt": (lambda a: a.rsqrt(), lambda: (positive(3),)),
    "reciprocal": (lambda a: a.reciprocal(), lambda: (positive(3),)),
    "square": (lambda a: a.square(), lambda: (leaf(3),)),
    "abs": (lambda a: a.abs(), lambda: (leaf(3, 2, low=0.1),)),
    "tanh": (lambda a: a.tanh(), lambda: (leaf(3, 2),)),
    "sigmoid": (lambda a: a.sigmoid(), lambda: (leaf(3, 2),)),
    "relu": (lambda a: a.relu(), lambda: (leaf(3, 2, low=0.1),)),
    "sin": (lambda a: a.sin(), lambda: (leaf(4),)),
    "cos": (lambda a: a.cos(), lambda: (leaf(4),)),
    "sign": (lambda a: a.sign() * a, lambda: (leaf(4, low=0.1),)),
    "clamp": (lambda a: a.clamp(-0.5, 0.6), lambda: (distinct(3, 4),)),
    "clamp_min": (lambda a: a.clamp(min=0.1), lambda: (distinct(3, 4),)),
    # reductions
    "sum": (lambda a: a.sum(), lambda: (leaf(3, 4),)),
    "sum_dim": (lambda a: a.sum(dim=1), lambda: (leaf(3, 4),)),
    "sum_dims_keepdim": (lambda a: a.sum(dim=(0, 2), keepdim=True), lambda: (leaf(2, 3, 4),)),
    "mean": (lambda a: a.mean(), lambda: (leaf(3, 4),)),
    "mean_dim": (lambda a: a.mean(-1, keepdim=True), lambda: (leaf(3, 4),)),
    "max_all": (lambda a: a.max(), lambda: (distinct(3, 4),)),
    "max_dim": (lambda a: a.max(dim=1).values, lambda: (distinct(3, 4),)),
    "min_dim_keepdim": (lambda a: a.min(dim=0, keepdim=True)[0], lambda: (distinct(3, 4),)),
    "amax": (lambda a: a.amax(dim=(0, 1)), lambda: (distinct(2, 3, 2),)),
    "amin": (lambda a: a.amin(dim=-1), lambda: (distinct(2, 3),)),
    "var": (lambda a: a.var(), lambda: (leaf(3, 4),)),
    "var_dim_biased": (lambda a: a.var(dim=0, unbiased=False), lambda: (leaf(3, 4),)),
    "std": (lambda a: a.std(dim=1), lambda: (leaf(3, 4),)),
    "std_correction": (lambda a: a.std(dim=(0, 1), correction=0, keepdim=True), lambda: (leaf(3, 4),)),
    "logsumexp": (lambda a: a.logsumexp(dim=1), lambda: (leaf(3, 4),)),
    "logsumexp_all": (lambda a: pydl.logsumexp(a, dim=(0, 1)), lambda: (leaf(3, 4),)),
    "prod": (lambda a: a.prod(), lambda: (leaf(2, 3),)),
    "prod_dim": (lambda a: a.prod(dim=1), lambda: (leaf(2, 3),)),
    "prod_with_zero": (lambda a: a.prod(dim=0), lambda: (pydl.tensor([[0.0, 2.0], [3.0, 0.5], [1.5, 0.0]],
                                                                     dtype=F64, requires_grad=True),)),
    "norm": (lambda a: a.norm(), lambda: (leaf(3, 4),)),
    "cumsum": (lambda a: a.cumsum(1), lambda: (leaf(3, 4),)),
    # shapes
    "reshape": (lambda a: a.reshape(4, 3) * pydl.arange(3, dtype=F64), lambda: (leaf(3, 4),)),
    "view": (lambda a: a.view(-1), lambda: (leaf(3, 4),)),
    "flatten": (lambda a: a.flatten(1), lambda: (leaf(2, 3, 4),)),
    "unflatten": (lambda a: a.unflatten(1, (2, 2)), lambda: (leaf(3, 4),)),
    "squeeze": (lambda a: a.squeeze(1), lambda: (leaf(3, 1, 2),)),
    "unsqueeze": (lambda a: a.unsqueeze(0) * pydl.ones(2, 1, 1, dtype=F64), lambda: (leaf(3, 2),)),
    "transpose": (lambda a: a.transpose(0, 2), lambda: (leaf(2, 3, 4),)),
    "permute": (lambda a: a.permute(2, 0, 1), lambda: (leaf(2, 3, 4),)),
    "T": (lambda a: a.T, lambda: (leaf(2, 3),)),
    "expand": (lambda a: a.expand(2, 3, 4), lambda: (leaf(3, 1),)),
    "contiguous": (lambda a: a.T.contiguous(), lambda: (leaf(2, 3),)),
    "clone": (lambda a: a.clone(), lambda: (leaf(2, 3),)),
    "repeat": (lambda a: a.repeat(2, 3), lambda: (leaf(2, 3),)),
    "flip": (lambda a: a.flip(1), lambda: (leaf(2, 3),)),
    "cat": (lambda a, b: pydl.cat([a, b, a], dim=1), lambda: (leaf(2, 3), leaf(2, 1))),
    "stack": (lambda a, b: pydl.stack([a, b], dim=1), lambda: (leaf(2, 3), leaf(2, 3, seed=2))),
    "split": (lambda a: a.split([1, 3], dim=1)[1] * 2, lambda: (leaf(2, 4),)),
    "chunk": (lambda a: a.chunk(3, dim=0)[2], lambda: (leaf(5, 2),)),
    "unbind": (lambda a: a.unbind(1)[0], lambda: (leaf(2, 3),)),
    # indexing
    "getitem_basic": (lambda a: a[1:, ::2, None, ..., 0], lambda: (leaf(3, 4, 2),)),
    "getitem_int": (lambda a: a[-1], lambda: (leaf(3, 4),)),
    "getitem_repeated_ints": (lambda a: a[[0, 2, 0, 0]], lambda: (leaf(3, 4),)),
    "getitem_int_tensor": (lambda a: a[:, pydl.tensor([1, 1, 3])], lambda: (leaf(3, 4),)),
    "getitem_two_arrays": (lambda a: a[[0, 0, 1], [2, 2, 3]], lambda: (leaf(3, 4),)),
    "getitem_mask": (lambda a: a[a.detach() > 0], lambda: (leaf(3, 4),)),
    "where": (lambda a, b: pydl.where(a.detach() > 0, a, b), lambda: (leaf(3, 4), leaf(4, seed=3))),
    "where_scalar": (lambda a: pydl.where(a.detach() > 0, a, 0.0), lambda: (leaf(3, 4),)),
    "masked_fill": (lambda a: a.masked_fill(a.detach() < 0, 2.0), lambda: (leaf(3, 4),)),
    "gather": (lambda a: a.gather(1, pydl.tensor([[0, 0], [1, 3], [2, 2]])), lambda: (leaf(3, 4),)),
    "index_select": (lambda a: a.index_select(0, pydl.tensor([2, 0, 2])), lambda: (leaf(3, 4),)),
    # matmul through gemm
    "matmul_2d": (lambda a, b: a @ b, lambda: (leaf(3, 4), leaf(4, 5))),
    "matmul_vec_mat": (lambda a, b: a @ b, lambda: (leaf(4), leaf(4, 2))),
    "matmul_mat_vec": (lambda a, b: a @ b, lambda: (leaf(3, 4), leaf(4))),
    "matmul_dot": (lambda a, b: a @ b, lambda: (leaf(4), leaf(4, seed=1))),
    "matmul_batched": (lambda a, b: a @ b, lambda: (leaf(2, 3, 4), leaf(2, 4, 5))),
    "matmul_batch_x_matrix": (lambda a, b: a @ b, lambda: (leaf(2, 3, 4), leaf(4, 2))),
    "matmul_matrix_x_batch": (lambda a, b: a @ b, lambda: (leaf(3, 4), leaf(2, 4, 2))),
    "matmul_broadcast_4d": (lambda a, b: a @ b, lambda: (leaf(2, 1, 3, 4), leaf(3, 4, 2))),
    "matmul_transposed_view": (lambda a, b: a.T @ b.T, lambda: (leaf(4, 3), leaf(2, 4))),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name):
    fn, make = OPS[name]
    assert gradcheck(fn, make())


def test_gradcheck_reports_worst_element():
    class Wrong(pydl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad):
            return grad  # should be 2 x grad

    with pytest.raises(GradcheckError, match=r"worst at output index .* numerical .* analytical"):
        gradcheck(Wrong.apply, (leaf(3),))
    assert gradcheck(Wrong.apply, (leaf(3),), raise_exception=False) is False


def test_gradcheck_wants_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda a: a * 2, (pydl.ones(2, requires_grad=True),))


# ----------------------------------------------------------------- the regressions
def test_node_used_twice():
    """x*x + x: the copy gate must add the gradients of both uses (d = 2x + 1)."""
    x = pydl.tensor([3.0, -2.0], requires_grad=True)
    (x * x + x).sum().backward()
    assert x.grad.tolist() == [7.0, -3.0]


def test_same_tensor_both_operands():
    x = pydl.tensor(3.0, requires_grad=True)
    y = x * x * x  # x^3
    y.backward()
    assert x.grad.item() == 27.0


def test_backward_twice_after_zero_grad():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x + x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy(force=True).copy()
    x.grad.zero_()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)
    # and a fresh forward after zero_grad gives the same again
    x.grad = None
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), first)


def test_gradients_accumulate():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(3):
        (x * 2).sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_two_equal_constants():
    """Two constants with the same value are still two nodes (no dedup by value)."""
    a = pydl.tensor(2.0, requires_grad=True)
    b = pydl.tensor(2.0, requires_grad=True)
    (a * 3 + b * 5).backward()
    assert (a.grad.item(), b.grad.item()) == (3.0, 5.0)
    c1, c2 = pydl.tensor(2.0), pydl.tensor(2.0)
    x = pydl.tensor(1.0, requires_grad=True)
    (x * c1 + x * c2).backward()
    assert x.grad.item() == 4.0


def test_broadcast_gradients_reduce_to_shape():
    a = pydl.ones(3, 1, requires_grad=True)
    b = pydl.ones(4, requires_grad=True)
    c = pydl.ones(2, 1, 1, requires_grad=True)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.tolist() == [[8.0]] * 3
    assert b.grad.shape == (4,) and b.grad.tolist() == [6.0] * 4
    assert c.grad.shape == (2, 1, 1) and c.grad.numpy().ravel().tolist() == [12.0, 12.0]


def test_add_gives_independent_gradients():
    """add hands the same upstream array to both inputs; their .grad must not alias."""
    a = pydl.zeros(3, requires_grad=True)
    b = pydl.zeros(3, requires_grad=True)
    (a + b).sum().backward()
    with pydl.no_grad():
        a.grad.mul_(10)
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    g = pydl.ones(3)
    c = pydl.zeros(3, requires_grad=True)
    (c + 0).backward(g)
    c.grad.data[0] = 5
    assert g.tolist() == [1.0, 1.0, 1.0]  # the user's gradient is not aliased either


def test_freed_graph_error_names_retain_graph():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    expected = 2 * (np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_non_scalar_backward_needs_gradient():
    x = pydl.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(pydl.ones(2, 2))
    assert x.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(pydl.ones(3))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        pydl.ones(2).sum().backward()


def test_deep_chain_no_recursion_limit():
    x = pydl.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad.item() == 1.0


def test_wide_fan_in():
    x = pydl.tensor(1.0, requires_grad=True)
    total = x * 0
    for i in range(500):
        total = total + x * i
    total.backward()
    assert x.grad.item() == sum(range(500))


def test_graph_is_freed_after_backward():
    x = pydl.ones(1000, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    assert node.next_edges is None  # saved arrays and edges released
    assert not hasattr(node, "saved") or node.__dict__ == {}


def test_intermediate_tensors_do_not_keep_graph_alive():
    x = pydl.ones(3, requires_grad=True)
    y = (x * 2).sum()
    ref = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert ref() is None


def test_leaf_properties():
    x = pydl.ones(2, requires_grad=True)
    y = x * 2
    assert x.is_leaf and not y.is_leaf and y.requires_grad
    assert y.grad_fn is not None and x.grad_fn is None
    z = pydl.ones(2) * 2
    assert z.is_leaf and not z.requires_grad
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and np.shares_memory(d.data, y.data)


def test_non_leaf_grad_stays_none_unless_retained():
    x = pydl.ones(2, requires_grad=True)
    y = x * 3
    y.retain_grad()
    z = y * 2
    z.sum().backward()
    assert y.grad.tolist() == [2.0, 2.0]
    assert z.grad is None


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        pydl.tensor([1, 2], requires_grad=True)


def test_cast_is_differentiable():
    x = pydl.tensor([0.5, 0.25], dtype=F64, requires_grad=True)
    y = x.to(pydl.float32)
    assert y.dtype == pydl.float32 and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.dtype == F64 and x.grad.tolist() == [3.0, 3.0]


def test_gradient_dtype_matches_leaf():
    w = pydl.ones(3, requires_grad=True)  # float32
    (w * pydl.ones(3, dtype=F64)).sum().backward()
    assert w.grad.dtype == pydl.float32


# ------------------------------------------------------------------ grad mode
def test_no_grad_context_and_decorator():
    x = pydl.ones(2, requires_grad=True)
    with pydl.no_grad():
        y = x * 2
        assert not pydl.is_grad_enabled()
        with pydl.enable_grad():
            z = x * 2
    assert pydl.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @pydl.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and pydl.is_grad_enabled()


def test_set_grad_enabled():
    x = pydl.ones(1, requires_grad=True)
    with pydl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert pydl.is_grad_enabled()
    pydl.set_grad_enabled(False)
    assert not pydl.is_grad_enabled()
    pydl.set_grad_enabled(True)
    assert pydl.is_grad_enabled()


def test_no_grad_restores_after_exception():
    with pytest.raises(ValueError):
        with pydl.no_grad():
            raise ValueError
    assert pydl.is_grad_enabled()


# ------------------------------------------------------------- hooks, grad, Function
def test_leaf_hook_can_change_gradient():
    x = pydl.ones(2, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0]] and x.grad.tolist() == [30.0, 30.0]


def test_non_leaf_hook():
    x = pydl.ones(2, requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 0)
    (y * 2).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


def test_autograd_grad_does_not_touch_dot_grad():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    w = pydl.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()
    gx, = pydl.autograd.grad(y, x, retain_graph=True)
    assert gx.tolist() == [3.0, 4.0] and x.grad is None and w.grad is None
    gx, gw = pydl.autograd.grad(y, [x, w])
    assert gw.tolist() == [1.0, 2.0]
    z = pydl.ones(1, requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        pydl.autograd.grad((x * 2).sum(), [x, z])
    assert pydl.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)[1] is None
    with pytest.raises(NotImplementedError):
        pydl.autograd.grad((x * 2).sum(), x, create_graph=True)


def test_autograd_grad_of_intermediate():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    y = (h * h).sum()
    gh, = pydl.autograd.grad(y, h)
    assert gh.tolist() == [4.0, 8.0]


def test_custom_function():
    class Cube(pydl.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x ** 3 * k

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return 3 * x * x * ctx.k * grad, None

    x = leaf(4)
    assert gradcheck(lambda t: Cube.apply(t, 2.0), (x,))
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward"


def test_inplace_rules():
    w = pydl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.zero_()
    with pydl.no_grad():
        w -= 0.5
        w *= 4
        w /= 2
        w.add_(pydl.ones(2), alpha=2)
    assert w.tolist() == [3.0, 3.0] and w.is_leaf
    y = w * 1  # a recorded non-leaf: += rebinds to the out-of-place result
    y0 = y
    y += 1
    assert y is not y0 and y0.tolist() == [3.0, 3.0] and y.tolist() == [4.0, 4.0]
    y.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]
    t = pydl.zeros(2)
    t += 1  # no grad needed: truly in place
    assert t.tolist() == [1.0, 1.0]


def test_setitem_rules():
    w = pydl.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w[0] = 1.0
    with pydl.no_grad():
        w[0] = 1.0
        w[pydl.tensor([False, True, False])] = 2.0
    assert w.tolist() == [1.0, 2.0, 0.0]
