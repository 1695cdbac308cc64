"""LSTM / GRU cells and time loops, forward and backward: every backend and ISA path
against the float64 NumPy reference, the reference against numeric gradients (and
against PyTorch where it is installed), threads, empty inputs and bad input."""
import inspect

import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

GATES = {"lstm": 4, "gru": 3}
# (T, B, I, H): hidden sizes off the 16-wide SIMD slices (1, 7, 33), batch 1, long-ish T.
SHAPES = [(1, 1, 1, 1), (5, 3, 4, 7), (3, 2, 33, 16), (7, 4, 17, 33), (2, 9, 64, 64), (20, 2, 3, 5)]


def params(rng, kind, I, H, dtype, bias=True):
    G = GATES[kind]
    k = 1.0 / np.sqrt(max(H, 1))
    w_ih, w_hh = (rng.uniform(-k, k, s).astype(dtype) for s in [(G * H, I), (G * H, H)])
    b_ih, b_hh = (rng.uniform(-k, k, G * H).astype(dtype) if bias else None for _ in range(2))
    return w_ih, w_hh, b_ih, b_hh


def tolerance(dtype, T, B):
    # Weight gradients sum T * B products; a step's rounding is carried through the next.
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-4, atol=2e-5 * max(1.0, np.sqrt(T * B)))
    return dict(rtol=1e-9, atol=1e-11 * max(1.0, np.sqrt(T * B)))


def on(backend, *arrays):
    """The arrays on the backend's device (None stays None)."""
    xp = xp_for(backend)
    return [None if a is None else xp.asarray(a) for a in arrays]


def compare(got, ref, dtype, names, tol):
    assert len(got) == len(ref)
    for name, g, r in zip(names, got, ref):
        if r is None:
            assert g is None, f"{name}: expected None"
        else:
            assert_close(g, r, dtype, what=name, **tol)


def run_layer(backend, kind, dtype, shape, rng, bias=True, initial=True, grads=(True, True, True)):
    T, B, I, H = shape
    w = params(rng, kind, I, H, dtype, bias)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0, c0 = ((rng.standard_normal((B, H)).astype(dtype) if initial else None) for _ in range(2))
    go = rng.standard_normal((T, B, H)).astype(dtype) if grads[0] else None
    ghT = rng.standard_normal((B, H)).astype(dtype) if grads[1] else None
    gcT = rng.standard_normal((B, H)).astype(dtype) if grads[2] else None
    tol = tolerance(dtype, T, B)
    fwd, bwd = kernels.get(f"{kind}_forward", backend), kernels.get(f"{kind}_backward", backend)
    if kind == "lstm":
        *outs, cache = fwd(*on(backend, x, h0, c0, *w))
        *ref_outs, ref_cache = reference.lstm_forward(x, h0, c0, *w)
        compare(outs, ref_outs, dtype, ["out", "h_T", "c_T"], tol)
        got, ref = bwd(*on(backend, go, ghT, gcT), cache), reference.lstm_backward(go, ghT, gcT, ref_cache)
        names = ["grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"]
    else:
        *outs, cache = fwd(*on(backend, x, h0, *w))
        *ref_outs, ref_cache = reference.gru_forward(x, h0, *w)
        compare(outs, ref_outs, dtype, ["out", "h_T"], tol)
        got, ref = bwd(*on(backend, go, ghT), cache), reference.gru_backward(go, ghT, ref_cache)
        names = ["grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"]
    compare(got, ref, dtype, names, tol)
    return outs, got


def run_cell(backend, kind, dtype, B, I, H, rng, bias=True, initial=True):
    w = params(rng, kind, I, H, dtype, bias)
    x = rng.standard_normal((B, I)).astype(dtype)
    h, c = ((rng.standard_normal((B, H)).astype(dtype) if initial else None) for _ in range(2))
    gh, gc = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    tol = tolerance(dtype, 1, B)
    fwd, bwd = kernels.get(f"{kind}_cell_forward", backend), kernels.get(f"{kind}_cell_backward", backend)
    if kind == "lstm":
        h1, c1, cache = fwd(*on(backend, x, h, c, *w))
        rh1, rc1, rcache = reference.lstm_cell_forward(x, np.zeros((B, H)) if h is None else h,
                                                       np.zeros((B, H)) if c is None else c, *w)
        compare([h1, c1], [rh1, rc1], dtype, ["h'", "c'"], tol)
        compare(bwd(*on(backend, gh, gc), cache), reference.lstm_cell_backward(gh, gc, rcache), dtype,
                ["grad_x", "grad_h", "grad_c", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"], tol)
    else:
        h1, cache = fwd(*on(backend, x, h, *w))
        rh1, rcache = reference.gru_cell_forward(x, np.zeros((B, H)) if h is None else h, *w)
        compare([h1], [rh1], dtype, ["h'"], tol)
        compare(bwd(*on(backend, gh), cache), reference.gru_cell_backward(gh, rcache), dtype,
                ["grad_x", "grad_h", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"], tol)


@pytest.mark.parametrize("backend", backends("lstm_forward"))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_layer_matches_reference(backend, kind, dtype, shape, rng):
    run_layer(backend, kind, dtype, shape, rng)


@pytest.mark.parametrize("backend", backends("lstm_forward"))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bias,initial,grads", [(False, True, (True, True, True)),
                                                (True, False, (True, False, False)),
                                                (False, False, (False, True, True)),
                                                (True, True, (False, False, True))])
def test_layer_optional_arguments(backend, kind, bias, initial, grads, rng):
    run_layer(backend, kind, np.float64, (4, 3, 5, 18), rng, bias=bias, initial=initial, grads=grads)


@pytest.mark.parametrize("backend", backends("lstm_cell_forward"))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("B,I,H", [(1, 1, 1), (3, 7, 33), (16, 64, 48), (2, 129, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_reference(backend, kind, dtype, B, I, H, bias, rng):
    run_cell(backend, kind, dtype, B, I, H, rng, bias=bias)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_without_state_starts_from_zeros(kind, rng):
    run_cell("cpu", kind, np.float64, 3, 4, 5, rng, initial=False)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_every_isa_path_matches_reference(path, kind, dtype, isa, rng):
    isa(path)
    run_layer("cpu", kind, dtype, (6, 5, 19, 37), rng)
    run_cell("cpu", kind, dtype, 4, 9, 21, rng)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_thread_count_does_not_change_results(kind, dtype, threads, rng):
    # B * G H * H is large enough here for the time loop to split the hidden units.
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(run_layer("cpu", kind, dtype, (3, 32, 40, 256), np.random.default_rng(7)))
    for outs, grads in results[1:]:
        for a, b in zip(outs + list(grads), results[0][0] + list(results[0][1])):
            if b is not None:
                assert_close(a, to_numpy(b).astype(np.float64), dtype, **tolerance(dtype, 3, 32))


@pytest.mark.parametrize("backend", backends("lstm_forward"))
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("shape", [(0, 3, 4, 5), (3, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0)], ids=str)
def test_empty(backend, kind, shape, rng):
    outs, grads = run_layer(backend, kind, np.float32, shape, rng)
    T, B, I, H = shape
    assert outs[0].shape == (T, B, H) and grads[0].shape == (T, B, I)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_saturated_gates(kind, rng):
    # Pre-activations of +-50: sigmoid and tanh saturate to 0 / +-1 without NaN.
    T, B, I, H = 3, 2, 4, 20
    w_ih, w_hh, b_ih, b_hh = params(rng, kind, I, H, np.float32)
    w_ih = (w_ih * 200).astype(np.float32)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    args = (x, None, None, w_ih, w_hh, b_ih, b_hh) if kind == "lstm" else (x, None, w_ih, w_hh, b_ih, b_hh)
    got = kernels.get(f"{kind}_forward")(*args)
    ref = getattr(reference, f"{kind}_forward")(*args)
    assert_close(got[0], ref[0], np.float32)


def numeric_grad(f, arrays, which, h=1e-6):
    num = np.zeros_like(arrays[which])
    for idx in np.ndindex(num.shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[which][idx] += h
        minus[which][idx] -= h
        num[idx] = (f(*plus) - f(*minus)) / (2 * h)
    return num


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reference_layer_backward_is_the_numeric_gradient(kind, rng):
    # L = sum(G_out * out) + sum(G_h * h_T) (+ sum(G_c * c_T)), through 3 steps, float64.
    T, B, I, H = 3, 2, 3, 4
    G = GATES[kind]
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih, w_hh, b_ih, b_hh = (rng.standard_normal(s) * 0.5 for s in [(G * H, I), (G * H, H), (G * H,), (G * H,)])
    G_out, G_h, G_c = rng.standard_normal((T, B, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    arrays = [x, h0, c0, w_ih, w_hh, b_ih, b_hh]
    if kind == "lstm":
        def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
            out, h, c, _ = reference.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            return np.sum(G_out * out) + np.sum(G_h * h) + np.sum(G_c * c)
        cache = reference.lstm_forward(*arrays)[3]
        grads = reference.lstm_backward(G_out, G_h, G_c, cache)
        which = [0, 1, 2, 3, 4, 5, 6]
    else:
        def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
            out, h, _ = reference.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
            return np.sum(G_out * out) + np.sum(G_h * h)
        cache = reference.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)[2]
        grads = reference.gru_backward(G_out, G_h, cache)
        which = [0, 1, 3, 4, 5, 6]
    for got, w in zip(grads, which):
        np.testing.assert_allclose(got, numeric_grad(f, arrays, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reference_cell_backward_is_the_numeric_gradient(kind, rng):
    B, I, H = 2, 3, 4
    G = GATES[kind]
    x, h, c = rng.standard_normal((B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih, w_hh, b_ih, b_hh = (rng.standard_normal(s) * 0.5 for s in [(G * H, I), (G * H, H), (G * H,), (G * H,)])
    G_h, G_c = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    arrays = [x, h, c, w_ih, w_hh, b_ih, b_hh]
    if kind == "lstm":
        def f(x, h, c, *w):
            h1, c1, _ = reference.lstm_cell_forward(x, h, c, *w)
            return np.sum(G_h * h1) + np.sum(G_c * c1)
        grads = reference.lstm_cell_backward(G_h, G_c, reference.lstm_cell_forward(*arrays)[2])
        which = [0, 1, 2, 3, 4, 5, 6]
    else:
        def f(x, h, c, *w):
            return np.sum(G_h * reference.gru_cell_forward(x, h, *w)[0])
        grads = reference.gru_cell_backward(G_h, reference.gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh)[1])
        which = [0, 1, 3, 4, 5, 6]
    for got, w in zip(grads, which):
        np.testing.assert_allclose(got, numeric_grad(f, arrays, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reference_matches_pytorch(kind, rng):
    torch = pytest.importorskip("torch")
    T, B, I, H = 5, 3, 4, 6
    G = GATES[kind]
    x, h0, c0 = rng.standard_normal((T, B, I)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w = [rng.standard_normal(s) for s in [(G * H, I), (G * H, H), (G * H,), (G * H,)]]
    G_out, G_h = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    mod = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(I, H).double()
    with torch.no_grad():
        for p, a in zip([mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0], w):
            p.copy_(torch.from_numpy(a))
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    if kind == "lstm":
        out, (hT, _) = mod(tx, (th0, tc0))
        ref_out, ref_h, _, cache = reference.lstm_forward(x, h0, c0, *w)
        ref_grads = reference.lstm_backward(G_out, G_h, None, cache)
    else:
        out, hT = mod(tx, th0)
        ref_out, ref_h, cache = reference.gru_forward(x, h0, *w)
        ref_grads = reference.gru_backward(G_out, G_h, cache)
    torch.autograd.backward([out, hT[0]], [torch.from_numpy(G_out), torch.from_numpy(G_h)])
    np.testing.assert_allclose(ref_out, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref_h, hT[0].detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref_grads[0], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref_grads[-4], mod.weight_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref_grads[-3], mod.weight_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref_grads[-1], mod.bias_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cpu_functions_take_the_reference_argument_names(rng):
    T, B, I, H = 2, 3, 4, 5
    arrays = dict(x_seq=rng.standard_normal((T, B, I)), x=rng.standard_normal((B, I)), h0=None, c0=None,
                  h=rng.standard_normal((B, H)), c=rng.standard_normal((B, H)), b_ih=None, b_hh=None,
                  grad_out=rng.standard_normal((T, B, H)), grad_hT=None, grad_cT=None,
                  grad_h=rng.standard_normal((B, H)), grad_c=None)
    for kind, G in GATES.items():
        arrays.update(w_ih=rng.standard_normal((G * H, I)), w_hh=rng.standard_normal((G * H, H)))
        for name in [f"{kind}_forward", f"{kind}_cell_forward"]:
            names = list(inspect.signature(getattr(reference, name)).parameters)
            result = kernels.get(name, "cpu")(**{n: arrays[n] for n in names})
            back = name.replace("forward", "backward")
            back_names = list(inspect.signature(getattr(reference, back)).parameters)
            kernels.get(back, "cpu")(**{n: arrays[n] for n in back_names if n != "cache"}, cache=result[-1])


@pytest.mark.parametrize("backend", backends("lstm_forward"))
def test_bad_input_is_reported(backend, rng):
    lstm, lstm_b = kernels.get("lstm_forward", backend), kernels.get("lstm_backward", backend)
    gru_cell = kernels.get("gru_cell_forward", backend)
    x, w_ih, w_hh, b_ih, b_hh, h_bad = on(backend, rng.standard_normal((3, 2, 4)).astype(np.float32),
                                          *params(rng, "lstm", 4, 5, np.float32), np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"lstm_forward: input must have 3 dimensions \(T, B, I\)"):
        lstm(x[0], None, None, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"w_hh must have shape \(4 \* H, H\)"):
        lstm(x, None, None, w_ih, w_hh[:, :4])
    with pytest.raises(ValueError, match=r"w_ih must have shape \(20, 4\)"):
        lstm(x, None, None, w_ih[:, :3], w_hh)
    with pytest.raises(ValueError, match=r"b_hh must have shape \(20,\)"):
        lstm(x, None, None, w_ih, w_hh, b_ih, b_hh[:19])
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 5\)"):
        lstm(x, h_bad, None, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"gru_cell_forward: w_hh must have shape \(3 \* H, H\)"):
        gru_cell(x[0], None, w_ih, w_hh)
    if backend == "cpu":
        with pytest.raises(TypeError, match="must have the same dtype"):
            lstm(x, None, None, w_ih.astype(np.float64), w_hh)
        _, _, _, cache = lstm(x, None, None, w_ih, w_hh)
        with pytest.raises(ValueError, match=r"lstm_backward: grad_out must have shape \(3, 2, 5\)"):
            lstm_b(np.zeros((3, 2, 4), np.float32), None, None, cache)
        with pytest.raises(TypeError, match="cache must be the cache returned by the cpu backend's lstm_forward"):
            lstm_b(None, None, None, ("gru",))
        with pytest.raises(TypeError, match="cache must be the cache returned"):
            kernels.get("lstm_cell_backward")(None, None, cache)


def test_reference_docstring_examples():
    import doctest
    import importlib

    module = importlib.import_module("pydl.kernels.reference.rnn")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} docstring example(s) failed"
