"""Feature space: nearest neighbours, PCA and t-SNE (lecture 8: "the last layers are an
embedded representation of the inputs; the embeddings are much better for KNN")."""
import numpy as np

__all__ = ["nearest_neighbors", "pca", "tsne"]


def _array(x, dtype=None):
    """A Tensor's array (detached) or any array-like, as NumPy."""
    from ..tensor import Tensor
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype)


def _matrix(x, op):
    arr = _array(x, np.float64)
    if arr.ndim < 2:
        raise ValueError(f"{op}: expected features (N, D), got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def nearest_neighbors(query, bank, k=5, metric="l2"):
    """Indices (Q, k) of the k nearest rows of ``bank`` (N, D) to each ``query`` row (Q, D),
    nearest first, by Euclidean distance (``"l2"``) or cosine similarity (``"cosine"``)."""
    q, b = _matrix(query, "nearest_neighbors"), _matrix(bank, "nearest_neighbors")
    if q.shape[1] != b.shape[1]:
        raise ValueError(f"nearest_neighbors: query has {q.shape[1]} features but bank {b.shape[1]}")
    if not 1 <= k <= len(b):
        raise ValueError(f"nearest_neighbors: k must be in [1, {len(b)}], got {k}")
    if metric == "l2":
        d = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None]
    elif metric == "cosine":
        qn = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
        bn = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12)
        d = -qn @ bn.T
    else:
        raise ValueError(f"nearest_neighbors: metric must be 'l2' or 'cosine', got {metric!r}")
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def pca(x, n_components=2):
    """Project centred features (N, D) on their top principal directions: -> (N, n_components).

    By the SVD of the centred matrix; signs fixed so each component's largest loading is positive.
    """
    X = _matrix(x, "pca")
    if not 1 <= n_components <= min(X.shape):
        raise ValueError(f"pca: n_components must be in [1, {min(X.shape)}], got {n_components}")
    Xc = X - X.mean(0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    V = Vt[:n_components]
    V *= np.sign(V[np.arange(n_components), np.abs(V).argmax(1)])[:, None]
    return Xc @ V.T


def _binary_search_p(D, perplexity, tol=1e-5, iters=50):
    """Row-conditional P_{j|i} with each row's entropy log(perplexity), by bisection on beta = 1 / 2 sigma^2."""
    n = D.shape[0]
    P = np.zeros((n, n))
    target = np.log(perplexity)
    for i in range(n):
        lo, hi, beta = 0.0, np.inf, 1.0
        d = np.delete(D[i], i)
        for _ in range(iters):
            p = np.exp(-(d - d.min()) * beta)
            s = p.sum()
            H = np.log(s) + beta * ((d - d.min()) * p).sum() / s
            if abs(H - target) < tol:
                break
            if H > target:
                lo, beta = beta, beta * 2 if hi == np.inf else (beta + hi) / 2
            else:
                hi, beta = beta, (beta + lo) / 2
        P[i, np.arange(n) != i] = p / s
    return P


def _exact_tsne(X, n_components, perplexity, n_iter, learning_rate, seed):
    n = X.shape[0]
    D = np.square(X[:, None, :] - X[None, :, :]).sum(-1)
    P = _binary_search_p(D, min(perplexity, (n - 1) / 3))
    P = np.maximum((P + P.T) / (2 * n), 1e-12)
    if learning_rate == "auto":   # scikit-learn's choice
        learning_rate = max(n / 12.0 / 4.0, 50.0)
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((n, n_components)) * 1e-4
    velocity, gains = np.zeros_like(Y), np.ones_like(Y)
    early = min(250, n_iter // 4)   # early exaggeration: clusters form first, then spread
    for it in range(n_iter):
        exaggeration = 12.0 if it < early else 1.0
        momentum = 0.5 if it < early else 0.8
        num = 1.0 / (1.0 + np.square(Y[:, None] - Y[None]).sum(-1))
        np.fill_diagonal(num, 0.0)
        Q = np.maximum(num / num.sum(), 1e-12)
        PQ = (exaggeration * P - Q) * num
        grad = 4.0 * ((np.diag(PQ.sum(1)) - PQ) @ Y)
        gains = np.where(np.sign(grad) != np.sign(velocity), gains + 0.2, gains * 0.8).clip(0.01)
        velocity = momentum * velocity - learning_rate * gains * grad
        Y = Y + velocity
        Y -= Y.mean(0)
    return Y


def tsne(x, n_components=2, perplexity=30.0, n_iter=1000, learning_rate="auto", seed=0, backend="auto"):
    """t-SNE embedding of features (N, D) -> (N, n_components).

    ``backend="auto"`` uses scikit-learn's TSNE when installed, else pydl's exact O(N^2)
    NumPy version (fine for a few thousand points); ``"sklearn"`` / ``"numpy"`` force one.
    """
    X = _matrix(x, "tsne")
    if backend not in ("auto", "sklearn", "numpy"):
        raise ValueError(f"tsne: backend must be 'auto', 'sklearn' or 'numpy', got {backend!r}")
    if len(X) < 4:
        raise ValueError(f"tsne: need at least 4 points, got {len(X)}")
    if backend in ("auto", "sklearn"):
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            if backend == "sklearn":
                raise
        else:
            return TSNE(n_components=n_components, perplexity=min(perplexity, (len(X) - 1) / 3),
                        learning_rate=learning_rate, init="pca", random_state=seed).fit_transform(X)
    return _exact_tsne(X, n_components, perplexity, n_iter, learning_rate, seed)
