"""RoI Align and RoI pool: C++ parity with the reference (forward and backward, every ISA,
float32 / float64, aligned or not, fixed and adaptive sampling, RoIs partly outside the
map, NaN and inverted RoIs, empty), the reference backward against central differences,
gradcheck through autograd, threads, and argument errors."""
import numpy as np
import pytest

import pydl
from pydl import kernels
from pydl.autograd import gradcheck
from pydl.kernels import reference as ref
from pydl.vision import ops
from parity import FLOAT_DTYPES, assert_close, backends, to_numpy, xp_for


def make_rois(rng, K, N, H, W, scale=1.0):
    """RoIs in image coordinates (1 / scale times the map), some spilling over the edges."""
    x1 = rng.uniform(-2, W / scale, K)
    y1 = rng.uniform(-2, H / scale, K)
    w = rng.uniform(0.5, W / scale, K)
    h = rng.uniform(0.5, H / scale, K)
    return np.stack([rng.integers(0, N, K), x1, y1, x1 + w, y1 + h], 1)


CASES = [  # (N, C, H, W, K, output_size, scale, sampling_ratio, aligned)
    (2, 3, 7, 9, 5, (2, 3), 1.0, -1, False),
    (2, 3, 7, 9, 5, (2, 3), 0.5, 2, True),
    (1, 4, 12, 5, 7, (3, 3), 0.25, 0, True),
    (3, 2, 6, 6, 4, (1, 1), 1.0, 1, False),
    (2, 5, 16, 16, 0, (2, 2), 1.0, -1, False),
]


@pytest.mark.parametrize("backend", backends("roi_align_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_roi_align_parity(backend, dtype, case, rng):
    N, C, H, W, K, osz, scale, sr, aligned = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    rois = make_rois(rng, K, N, H, W, scale)
    g = rng.standard_normal((K, C) + osz).astype(dtype)
    fwd = kernels.get("roi_align_forward", backend)
    bwd = kernels.get("roi_align_backward", backend)
    xp = xp_for(backend)
    assert_close(fwd(xp.asarray(x), xp.asarray(rois), osz, scale, sr, aligned),
                 ref.roi_align_forward(x, rois, osz, scale, sr, aligned), dtype)
    assert_close(bwd(xp.asarray(g), xp.asarray(rois), x.shape, scale, sr, aligned),
                 ref.roi_align_backward(g, rois, x.shape, scale, sr, aligned), dtype, what="grad_input")


@pytest.mark.parametrize("backend", backends("roi_pool_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_roi_pool_parity(backend, dtype, case, rng):
    N, C, H, W, K, osz, scale, _, _ = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    rois = make_rois(rng, K, N, H, W, scale)
    xp = xp_for(backend)
    out, arg = kernels.get("roi_pool_forward", backend)(xp.asarray(x), xp.asarray(rois), osz, scale)
    rout, rarg = ref.roi_pool_forward(x, rois, osz, scale)
    assert_close(out, rout, dtype)
    np.testing.assert_array_equal(to_numpy(arg), rarg)
    g = rng.standard_normal(out.shape).astype(dtype)
    assert_close(kernels.get("roi_pool_backward", backend)(xp.asarray(g), arg, xp.asarray(rois), x.shape),
                 ref.roi_pool_backward(g, rarg, rois, x.shape), dtype, what="grad_input")


def test_bad_rois_are_defined(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    rois = np.array([[0, np.nan, 0, 3, 3], [0, 4, 4, 1, 1], [0, -50, -50, -40, -40], [0, 0, 0, np.inf, 2]])
    for aligned in (False, True):
        want = ref.roi_align_forward(x, rois, (2, 2), 1.0, -1, aligned)
        assert np.all(want[0] == 0) and np.all(want[2] == 0) and np.all(want[3] == 0)
        assert_close(kernels.get("roi_align_forward", "cpu")(x, rois, (2, 2), 1.0, -1, aligned), want, np.float64)
    out, arg = kernels.get("roi_pool_forward", "cpu")(x, rois, (2, 2))
    rout, rarg = ref.roi_pool_forward(x, rois, (2, 2))
    np.testing.assert_array_equal(arg, rarg)
    assert_close(out, rout, np.float64)
    assert np.all(arg[0] == -1) and np.all(out[0] == 0)


def test_reference_backward_is_the_numeric_gradient(rng):
    x = rng.standard_normal((1, 2, 5, 6))
    rois = np.array([[0, 0.3, 0.7, 4.1, 3.6], [0, 1.2, 0.1, 2.9, 4.8]])
    g = rng.standard_normal((2, 2, 2, 2))
    for aligned, sr in ((False, 2), (True, -1)):
        f = lambda v: np.sum(g * ref.roi_align_forward(v, rois, (2, 2), 1.0, sr, aligned))  # noqa: E731
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = 1e-6
            num[i] = (f(x + e) - f(x - e)) / 2e-6
        np.testing.assert_allclose(ref.roi_align_backward(g, rois, x.shape, 1.0, sr, aligned), num, atol=1e-7)


def test_gradcheck_through_autograd(rng):
    x = pydl.tensor(rng.standard_normal((2, 2, 6, 5)), requires_grad=True)
    boxes = [pydl.tensor([[0.5, 0.2, 3.7, 4.1]]), pydl.tensor([[1.1, 1.3, 4.2, 5.5], [0.0, 0.0, 2.0, 2.0]])]
    assert gradcheck(lambda t: ops.roi_align(t, boxes, (2, 3), 1.0, 2, True), (x,))
    assert gradcheck(lambda t: ops.roi_align(t, boxes, 2, 0.5, -1, False), (x,))
    # max pooling: perturbations small enough not to change the winners
    assert gradcheck(lambda t: ops.roi_pool(t, boxes, (2, 2), 1.0), (x,), eps=1e-7)


def test_module_forms_and_tensor_rois(rng):
    x = pydl.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    rois = pydl.tensor(np.array([[1, 0, 0, 7, 7], [0, 2, 2, 5, 5]], np.float32))
    m = ops.RoIAlign((2, 2), 1.0, 2, aligned=True)
    y = m(x, rois)
    assert y.shape == (2, 3, 2, 2) and y.dtype == pydl.float32
    y.sum().backward()
    assert x.grad.shape == (2, 3, 8, 8)
    assert "aligned=True" in repr(m)
    p = ops.RoIPool(3, 0.5)(x, rois)
    assert p.shape == (2, 3, 3, 3)


def test_threads(rng, threads):
    x = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    rois = make_rois(rng, 30, 2, 20, 20)
    g = rng.standard_normal((30, 16, 4, 4)).astype(np.float32)
    res = []
    for t in (1, 2):
        threads(t)
        res.append((kernels.get("roi_align_forward", "cpu")(x, rois, (4, 4)),
                    kernels.get("roi_align_backward", "cpu")(g, rois, x.shape)))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_errors():
    x = np.zeros((2, 3, 4, 4), np.float32)
    fwd = kernels.get("roi_align_forward", "cpu")
    with pytest.raises(ValueError, match=r"roi_align: rois\[:, 0\] must hold batch indices in \[0, 2\)"):
        fwd(x, np.array([[2, 0, 0, 1, 1]], np.float32), (2, 2))
    with pytest.raises(ValueError, match=r"roi_align: rois must have shape \(K, 5\)"):
        fwd(x, np.zeros((3, 4), np.float32), (2, 2))
    with pytest.raises(ValueError, match="roi_align: output_size must be two positive integers"):
        fwd(x, np.zeros((1, 5), np.float32), (0, 2))
    with pytest.raises(ValueError, match=r"roi_align: input must be \(N, C, H, W\)"):
        fwd(x[0], np.zeros((1, 5), np.float32), (2, 2))
    with pytest.raises(ValueError, match="roi_pool: rois"):
        kernels.get("roi_pool_forward", "cpu")(x, np.array([[0.5, 0, 0, 1, 1]]), (2, 2))
    with pytest.raises(ValueError, match="roi_pool_backward: argmax holds"):
        kernels.get("roi_pool_backward", "cpu")(np.zeros((1, 3, 2, 2), np.float32), np.full((1, 3, 2, 2), 99),
                                                np.zeros((1, 5)), x.shape)
    with pytest.raises(TypeError, match="roi_align: input must be a Tensor"):
        ops.roi_align(x, [np.zeros((1, 4))], 2)
    with pytest.raises(ValueError, match=r"roi_align: boxes\[0\] must have shape \(K, 4\)"):
        ops.roi_align(pydl.tensor(x), [np.zeros((1, 5))], 2)
