"""embedding forward and backward: every backend against the float64 NumPy reference,
the reference against its definition as a one-hot product, repeated and padding indices,
integer dtypes, threads, empty inputs and bad input."""
import inspect

import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

# (V, E, index shape)
SHAPES = [(1, 1, (1,)), (10, 7, (3, 5)), (33, 129, (2, 3, 4)), (1000, 16, (4096,)), (5, 3, ()), (7, 4, (0, 3)),
          (6, 0, (4,))]


@pytest.mark.parametrize("backend", backends("embedding_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("V,E,shape", SHAPES, ids=str)
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_matches_reference(backend, dtype, V, E, shape, padding_idx, rng):
    xp = xp_for(backend)
    weight = rng.standard_normal((V, E)).astype(dtype)
    idx = rng.integers(0, V, size=shape)
    out = kernels.get("embedding_forward", backend)(xp.asarray(weight), xp.asarray(idx), padding_idx)
    assert_close(out, reference.embedding_forward(weight, idx, padding_idx), dtype)
    g = rng.standard_normal(shape + (E,)).astype(dtype)
    grad = kernels.get("embedding_backward", backend)(xp.asarray(g), xp.asarray(idx), V, padding_idx)
    assert_close(grad, reference.embedding_backward(g, idx, V, padding_idx), dtype,
                 atol=1e-5 * np.sqrt(max(1, idx.size / V)) if dtype == np.float32 else None)


@pytest.mark.parametrize("backend", backends("embedding_forward"))
@pytest.mark.parametrize("itype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_every_integer_dtype(backend, itype, rng):
    xp = xp_for(backend)
    weight = rng.standard_normal((100, 8)).astype(np.float32)
    idx = rng.integers(0, 100, size=(5, 6)).astype(itype)
    assert_close(kernels.get("embedding_forward", backend)(xp.asarray(weight), xp.asarray(idx)),
                 weight[idx.astype(np.int64)], np.float32)
    g = rng.standard_normal((5, 6, 8)).astype(np.float32)
    assert_close(kernels.get("embedding_backward", backend)(xp.asarray(g), xp.asarray(idx), 100),
                 reference.embedding_backward(g, idx.astype(np.int64), 100), np.float32)


@pytest.mark.parametrize("backend", backends("embedding_forward"))
def test_repeated_indices_add_up_and_padding_gets_nothing(backend):
    xp = xp_for(backend)
    idx = xp.asarray(np.array([[1, 1, 2], [1, 0, 2]]))
    g = xp.ones((2, 3, 2), dtype=np.float64)
    grad = to_numpy(kernels.get("embedding_backward", backend)(g, idx, 4, padding_idx=2))
    np.testing.assert_array_equal(grad, [[1, 1], [3, 3], [0, 0], [0, 0]])


@pytest.mark.parametrize("backend", backends("embedding_forward"))
def test_strided_inputs(backend, rng):
    xp = xp_for(backend)
    weight = xp.asarray(rng.standard_normal((8, 20)).astype(np.float32))[:, ::2]  # (8, 10), strided
    idx = xp.asarray(rng.integers(0, 8, size=(6, 4))).T                           # (4, 6), transposed
    nw, ni = to_numpy(weight), to_numpy(idx)
    assert_close(kernels.get("embedding_forward", backend)(weight, idx), nw[ni], np.float32)
    g = xp.asarray(rng.standard_normal((6, 4, 10)).astype(np.float32)).transpose(1, 0, 2)
    assert_close(kernels.get("embedding_backward", backend)(g, idx, 8),
                 reference.embedding_backward(to_numpy(g), ni, 8), np.float32)


def test_reference_is_a_one_hot_product(rng):
    # out = onehot(idx) @ W, so dL/dW = onehot(idx)^T @ dL/dout.
    V, E = 6, 3
    w, idx, g = rng.standard_normal((V, E)), rng.integers(0, V, size=10), rng.standard_normal((10, E))
    onehot = np.eye(V)[idx]
    np.testing.assert_allclose(reference.embedding_forward(w, idx), onehot @ w)
    np.testing.assert_allclose(reference.embedding_backward(g, idx, V), onehot.T @ g)


def test_thread_count_does_not_change_results(threads, rng):
    # Each row sums its positions in position order: the same bits for any thread count.
    idx = rng.integers(0, 50, size=(64, 100))
    g = rng.standard_normal((64, 100, 64)).astype(np.float32)
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(kernels.get("embedding_backward")(g, idx, 50, 3))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_cpu_functions_take_the_reference_argument_names(rng):
    values = dict(weight=rng.standard_normal((5, 2)), indices=np.array([1, 4]), padding_idx=None,
                  grad_out=np.ones((2, 2)), num_embeddings=5)
    for op in ["embedding_forward", "embedding_backward"]:
        names = inspect.signature(getattr(reference, op)).parameters
        kernels.get(op, "cpu")(**{n: values[n] for n in names})


@pytest.mark.parametrize("backend", backends("embedding_forward"))
def test_bad_input_is_reported(backend, rng):
    fwd, bwd = kernels.get("embedding_forward", backend), kernels.get("embedding_backward", backend)
    xp = xp_for(backend)
    w = xp.asarray(rng.standard_normal((5, 3)).astype(np.float32))
    with pytest.raises(IndexError, match=r"embedding_forward: index 5 out of range for num_embeddings 5 "
                                         r"\(at indices\[1, 0\]\)"):
        fwd(w, np.array([[0, 1], [5, 2]]))
    with pytest.raises(IndexError, match=r"index -1 out of range"):
        fwd(w, np.array([-1]))
    with pytest.raises(IndexError, match=r"embedding_backward: index 7 out of range for num_embeddings 5"):
        bwd(xp.ones((2, 3), np.float32), np.array([7, 0]), 5)
    with pytest.raises(TypeError, match="indices must be integers"):
        fwd(w, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        fwd(w[0], np.array([0]))
    with pytest.raises(ValueError, match="padding_idx 5 must be within num_embeddings 5"):
        fwd(w, np.array([0]), 5)
    with pytest.raises(ValueError, match=r"grad_out must have shape indices.shape \+ \(embedding_dim,\)"):
        bwd(xp.ones((3, 3), np.float32), np.array([0, 1]), 5)


def test_reference_docstring_examples():
    import doctest
    import importlib

    module = importlib.import_module("pydl.kernels.reference.embedding")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} docstring example(s) failed"
