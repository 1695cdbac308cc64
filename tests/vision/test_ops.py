"""Box kernels (box_iou, generalized_box_iou, box_area, box_convert, nms, batched_nms):
parity with the NumPy reference on every backend and ISA path, boxes exactly at the IoU
threshold, ties in scores, degenerate / inverted / NaN boxes, empty input, bad arguments."""
import numpy as np
import pytest

import pydl
from pydl import kernels
from pydl.kernels import reference as ref
from pydl.vision import ops
from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for


def grid_boxes(rng, n, dtype=np.float32, size=200, span=(2, 60)):
    """Boxes on a quarter-pixel grid: IoUs are exact ratios in float32 and float64 alike,
    so NMS decisions cannot flip on rounding (and exact ties are common)."""
    xy = rng.integers(0, size * 4, (n, 2)) / 4
    wh = rng.integers(span[0] * 4, span[1] * 4, (n, 2)) / 4
    return np.concatenate([xy, xy + wh], 1).astype(dtype)


@pytest.mark.parametrize("backend", backends("box_iou"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n,m", [(1, 1), (7, 33), (129, 65), (0, 5), (5, 0)])
def test_box_iou_parity(backend, dtype, n, m, rng, isa):
    a, b = grid_boxes(rng, n, dtype), grid_boxes(rng, m, dtype)
    want = ref.box_iou(a, b)
    xa, xb = xp_for(backend).asarray(a), xp_for(backend).asarray(b)
    for path in isa_paths():
        isa(path)
        assert_close(kernels.get("box_iou", backend)(xa, xb), want, dtype, what=f"box_iou {path}")
        assert_close(kernels.get("generalized_box_iou", backend)(xa, xb), ref.generalized_box_iou(a, b), dtype,
                     what=f"generalized_box_iou {path}")


@pytest.mark.parametrize("backend", backends("box_iou"))
def test_box_iou_threads(backend, rng, threads):
    a = xp_for(backend).asarray(grid_boxes(rng, 700, np.float32))
    threads(1)
    one = to_numpy(kernels.get("box_iou", backend)(a, a))
    threads(2)
    np.testing.assert_array_equal(to_numpy(kernels.get("box_iou", backend)(a, a)), one)


def test_box_iou_degenerate():
    a = np.array([[0, 0, 2, 2], [1, 1, 1, 1], [3, 3, 1, 1], [0, 0, np.nan, 2], [0, 0, np.inf, 1]], np.float32)
    want = ref.box_iou(a, a)
    # zero-area, inverted and NaN boxes: IoU 0 with everything, themselves included
    assert want[0, 0] == 1 and np.all(want[1:4] == 0) and np.all(want[:, 1:4] == 0)
    assert not np.isnan(want).any()
    for path in isa_paths():
        pydl._C._set_isa(path)
        np.testing.assert_array_equal(kernels.get("box_iou", "cpu")(a, a), want.astype(np.float32))
        assert not np.isnan(kernels.get("generalized_box_iou", "cpu")(a, a)).any()
    pydl._C._set_isa(pydl._C._best_isa())


def test_box_area_convert(rng):
    b = grid_boxes(rng, 9, np.float64)
    np.testing.assert_allclose(ref.box_area(b), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    for f in ("xyxy", "xywh", "cxcywh"):
        for g in ("xyxy", "xywh", "cxcywh"):
            back = ref.box_convert(ref.box_convert(b, "xyxy", f), f, g)
            np.testing.assert_allclose(ref.box_convert(back, g, "xyxy"), b, atol=1e-12)
            got = kernels.get("box_convert", "cpu")(b.astype(np.float32), "xyxy", f)
            assert got.dtype == np.float32
            assert_close(got, ref.box_convert(b, "xyxy", f), np.float32)
    assert ops.box_area(pydl.tensor(b)).shape == (9,)
    with pytest.raises(ValueError, match="box_convert: in_fmt"):
        ops.box_convert(b, "xyzz", "xyxy")


@pytest.mark.parametrize("backend", backends("nms"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 300, 1000])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7])
def test_nms_parity(backend, dtype, n, thr, rng, isa):
    b = grid_boxes(rng, n, dtype)
    s = (rng.integers(0, 20, n) / 20).astype(dtype)  # many exact ties: order by index
    want = ref.nms(b, s, thr)
    xp = xp_for(backend)
    for path in isa_paths():
        isa(path)
        got = kernels.get("nms", backend)(xp.asarray(b), xp.asarray(s), thr)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(to_numpy(got), want, err_msg=f"{path} n={n} thr={thr}")


@pytest.mark.parametrize("backend", backends("nms"))
@pytest.mark.parametrize("grain", [None, 1])
def test_nms_threads(backend, grain, rng, threads):
    b = grid_boxes(rng, 3000, np.float32, size=300)
    s = rng.random(3000).astype(np.float32)
    want = ref.nms(b, s, 0.5)
    xp = xp_for(backend)
    xb, xs, xc = xp.asarray(b), xp.asarray(s), xp.asarray(np.arange(3000) % 3)
    old = pydl._C._nms_grain(grain) if grain else None  # grain 1: every block step in parallel
    try:
        for t in (1, 2):
            threads(t)
            np.testing.assert_array_equal(to_numpy(kernels.get("nms", backend)(xb, xs, 0.5)), want)
            np.testing.assert_array_equal(to_numpy(kernels.get("batched_nms", backend)(xb, xs, xc, 0.5)),
                                          ref.batched_nms(b, s, np.arange(3000) % 3, 0.5))
    finally:
        if old:
            pydl._C._nms_grain(old)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nms_threshold_exact(dtype, isa):
    # IoU(0, 1) = 1/2 and IoU(2, 3) = 1/4 exactly: equal to the threshold keeps the box
    b = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [5, 0, 9, 1], [5, 0, 6, 1]], dtype)
    s = np.array([4, 3, 2, 1], dtype)
    cases = {0.5: [0, 1, 2, 3], 0.4999: [0, 2, 3], 0.25: [0, 2, 3], 0.2499: [0, 2]}
    for thr, want in cases.items():
        np.testing.assert_array_equal(ref.nms(b, s, thr), want)
    for path in isa_paths():
        isa(path)
        for thr, want in cases.items():
            np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, thr), want, err_msg=f"{path} {thr}")


def test_nms_third_threshold_matches_reference():
    # the float32 IoU 1/3 rounds above the double 1/3; torchvision compares float to double
    b = np.array([[0, 0, 2, 1], [0, 0, 3, 1]], np.float32)
    s = np.array([2, 1], np.float32)
    iou32 = np.float32(1) / np.float32(3)
    expect = [0] if float(iou32) > 1 / 3 else [0, 1]
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, 1 / 3), expect)


def test_nms_ties_and_nan(isa):
    b = np.array([[0, 0, 1, 1]] * 4 + [[5, 5, 6, 6]], np.float32)
    s = np.array([0.5, 0.9, 0.9, np.nan, np.nan], np.float32)
    # ties by index (1 before 2), NaN ranks last: box 3 is suppressed by box 1, box 4 is kept
    want = [1, 4]
    np.testing.assert_array_equal(ref.nms(b, s, 0.5), want)
    for path in isa_paths():
        isa(path)
        np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, 0.5), want)
        np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, np.full(5, np.nan, np.float32), 0.5), [0, 4])


def test_nms_degenerate_boxes():
    b = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [2, 2, 1, 1], [2, 2, 1, 1], [0, 0, np.nan, 1], [0, 0, 1, 1]],
                 np.float64)
    s = np.arange(6, 0, -1).astype(np.float64)
    want = np.arange(6)  # IoU 0 with everything: nothing suppresses, nothing is suppressed
    np.testing.assert_array_equal(ref.nms(b, s, 0.5), want)
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, 0.5), want)
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, -0.1), [0])  # negative: IoU 0 > thr
    np.testing.assert_array_equal(ref.nms(b, s, -0.1), [0])
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(b, s, np.nan), want)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nms_empty_and_errors(dtype):
    nms = kernels.get("nms", "cpu")
    got = nms(np.zeros((0, 4), dtype), np.zeros(0, dtype), 0.5)
    assert got.shape == (0,) and got.dtype == np.int64
    assert ref.nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match=r"nms: boxes must have shape \(N, 4\), got \(10, 5\)"):
        nms(np.zeros((10, 5), dtype), np.zeros(10, dtype), 0.5)
    with pytest.raises(ValueError, match="nms: scores must have shape"):
        nms(np.zeros((10, 4), dtype), np.zeros(9, dtype), 0.5)
    with pytest.raises(TypeError, match="nms: boxes must be float32 or float64"):
        nms(np.zeros((10, 4), np.int32), np.zeros(10, dtype), 0.5)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        nms([[0, 0, 1, 1]], np.zeros(1, dtype), 0.5)


def test_nms_strided_input(rng):
    b = grid_boxes(rng, 200, np.float64)
    s = rng.random(200)
    bt = np.asfortranarray(b)
    big = np.zeros((400, 8))
    big[::2, :4] = b
    want = ref.nms(b, s, 0.5)
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(bt, s, 0.5), want)
    np.testing.assert_array_equal(kernels.get("nms", "cpu")(big[::2, :4], np.concatenate([s, s])[::2][:200], 0.5),
                                  ref.nms(b, np.concatenate([s, s])[::2][:200], 0.5))


@pytest.mark.parametrize("backend", backends("batched_nms"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [0, 1, 50, 500])
def test_batched_nms_parity(backend, dtype, n, rng):
    b = grid_boxes(rng, n, dtype, size=100)
    s = (rng.integers(0, 10, n) / 10).astype(dtype)
    c = rng.integers(0, 4, n)
    want = ref.batched_nms(b, s, c, 0.5)
    xp = xp_for(backend)
    got = to_numpy(kernels.get("batched_nms", backend)(xp.asarray(b), xp.asarray(s), xp.asarray(c), 0.5))
    np.testing.assert_array_equal(got, want)
    # the per-category definition: nms on each category's boxes
    if n:
        per = np.concatenate([np.flatnonzero(c == k)[ref.nms(b[c == k], s[c == k], 0.5)] for k in np.unique(c)])
        assert sorted(per.tolist()) == sorted(got.tolist())


def test_batched_nms_nan_and_errors():
    b = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, np.inf, 1], [0, 0, np.inf, 1]], np.float32)
    s = np.array([1, 2, 3, np.nan], np.float32)
    c = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(kernels.get("batched_nms", "cpu")(b, s, c, 0.5), ref.batched_nms(b, s, c, 0.5))
    with pytest.raises(TypeError, match="batched_nms: idxs must be an integer array"):
        kernels.get("batched_nms", "cpu")(b, s, c.astype(np.float32), 0.5)
    with pytest.raises(ValueError, match="batched_nms: idxs must have shape"):
        kernels.get("batched_nms", "cpu")(b, s, c[:3], 0.5)


def test_public_ops_on_tensors(rng):
    b = grid_boxes(rng, 40, np.float32)
    s = rng.random(40).astype(np.float32)
    keep = ops.nms(pydl.tensor(b), pydl.tensor(s), 0.5)
    assert isinstance(keep, pydl.Tensor) and keep.dtype == pydl.int64
    np.testing.assert_array_equal(keep.numpy(), ref.nms(b, s, 0.5))
    iou = ops.box_iou(pydl.tensor(b), pydl.tensor(b))
    assert iou.shape == (40, 40)
    assert isinstance(ops.batched_nms(b, s, np.zeros(40, np.int64), 0.5), np.ndarray)
    np.testing.assert_array_equal(ops.remove_small_boxes(b, 10), np.flatnonzero(
        ((b[:, 2] - b[:, 0]) >= 10) & ((b[:, 3] - b[:, 1]) >= 10)))
    assert ops.clip_boxes_to_image(b, (50, 60)).max() <= 60


def test_reference_doctests():
    import doctest

    from pydl.kernels.reference import boxes

    assert doctest.testmod(boxes).failed == 0
