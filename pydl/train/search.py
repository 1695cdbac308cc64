"""Hyper-parameter search (lecture 8): grid and random, coarse then fine.

The seeds' advice: search learning rates and regularisation strengths on a log scale;
prefer random search to grid search (with a few important parameters among many, random
trials try more distinct values of each); start coarse (few epochs, wide ranges), then
narrow the ranges around the best trials and search again, longer.

``objective(params) -> score`` is any function (typically: build a model with ``params``,
train it a few epochs, return the validation accuracy). Results are sorted best first.

>>> result = random_search(lambda p: -(np.log10(p["lr"]) + 2) ** 2,
...                        {"lr": LogUniform(1e-5, 1e-1)}, n_trials=20, seed=0)
>>> 1e-3 < result.best_params["lr"] < 1e-1
True
"""
import itertools
import math

import numpy as np

__all__ = ["Choice", "IntUniform", "LogUniform", "SearchResult", "Uniform", "coarse_to_fine", "grid_search",
           "random_search"]


class Uniform:
    """A value uniform in [low, high]."""

    def __init__(self, low, high):
        if not low <= high:
            raise ValueError(f"Uniform: need low <= high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def around(self, values):
        lo, hi = min(values), max(values)
        pad = 0.25 * (hi - lo or (self.high - self.low) * 0.1)
        return Uniform(max(self.low, lo - pad), min(self.high, hi + pad))

    def __repr__(self):
        return f"{type(self).__name__}({self.low:g}, {self.high:g})"


class LogUniform(Uniform):
    """A value whose logarithm is uniform: 10**uniform(log10 low, log10 high) -- the seeds'
    way to sample learning rates and weight decays."""

    def __init__(self, low, high):
        if not 0 < low <= high:
            raise ValueError(f"LogUniform: need 0 < low <= high, got {low}, {high}")
        super().__init__(low, high)

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def around(self, values):
        lo, hi = math.log(min(values)), math.log(max(values))
        pad = 0.25 * (hi - lo or (math.log(self.high) - math.log(self.low)) * 0.1)
        return LogUniform(max(self.low, math.exp(lo - pad)), min(self.high, math.exp(hi + pad)))


class IntUniform(Uniform):
    """An integer uniform in [low, high] (both included)."""

    def sample(self, rng):
        return int(rng.integers(int(self.low), int(self.high) + 1))

    def around(self, values):
        return IntUniform(max(self.low, min(values) - 1), min(self.high, max(values) + 1))


class Choice:
    """One of ``options``, each equally likely."""

    def __init__(self, options):
        self.options = list(options)
        if not self.options:
            raise ValueError("Choice: options is empty")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def around(self, values):
        return Choice([o for o in self.options if o in values])

    def __repr__(self):
        return f"Choice({self.options!r})"


class SearchResult:
    """The trials of a search, best first: ``trials`` (list of ``{"params", "score"}``),
    ``best_params``, ``best_score``."""

    def __init__(self, trials, maximize):
        key = (lambda t: -t["score"]) if maximize else (lambda t: t["score"])
        finite = [t for t in trials if t["score"] is not None and np.isfinite(t["score"])]
        rest = [t for t in trials if t not in finite]
        self.trials = sorted(finite, key=key) + rest
        self.maximize = maximize

    @property
    def best_params(self):
        return self.trials[0]["params"] if self.trials else None

    @property
    def best_score(self):
        return self.trials[0]["score"] if self.trials else None

    def table(self, top=10):
        """The ``top`` trials as text, one per line."""
        lines = []
        for i, t in enumerate(self.trials[:top]):
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
            lines.append(f"{i + 1:>3}. score {t['score']:.4f}  {params}")
        return "\n".join(lines)

    def __repr__(self):
        return f"SearchResult({len(self.trials)} trials, best {self.best_score!r} at {self.best_params!r})"


def _run(objective, params_list, maximize, callback):
    trials = []
    for params in params_list:
        score = objective(dict(params))
        score = None if score is None else float(score)
        trial = {"params": dict(params), "score": score}
        trials.append(trial)
        if callback is not None:
            callback(trial)
    return SearchResult(trials, maximize)


def grid_search(objective, grid, maximize=True, callback=None):
    """Try every combination of the values in ``grid`` ({name: list of values}).

    >>> grid_search(lambda p: p["a"] * p["b"], {"a": [1, 2], "b": [3, -1]}).best_params
    {'a': 2, 'b': 3}
    """
    if not grid:
        raise ValueError("grid_search: grid is empty")
    names = list(grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*(list(grid[n]) for n in names))]
    return _run(objective, combos, maximize, callback)


def _sample(space, rng):
    out = {}
    for name, dist in space.items():
        out[name] = dist.sample(rng) if hasattr(dist, "sample") else dist
    return out


def random_search(objective, space, n_trials=20, seed=0, maximize=True, callback=None):
    """Try ``n_trials`` parameter sets drawn from ``space`` ({name: Uniform / LogUniform /
    IntUniform / Choice, or a fixed value}) with a generator seeded by ``seed``."""
    if not space:
        raise ValueError("random_search: space is empty")
    rng = np.random.default_rng(seed)
    return _run(objective, [_sample(space, rng) for _ in range(int(n_trials))], maximize, callback)


def coarse_to_fine(objective, space, n_coarse=20, n_fine=10, top=3, seed=0, maximize=True, fine_objective=None):
    """The seeds' two-stage search: random search over ``space``, then random search again in
    the ranges spanned by the ``top`` best coarse trials (padded a little); ``fine_objective``
    (default ``objective``) may train longer. Returns (coarse result, fine result)."""
    coarse = random_search(objective, space, n_coarse, seed, maximize)
    best = coarse.trials[:max(1, int(top))]
    narrowed = {}
    for name, dist in space.items():
        if hasattr(dist, "around"):
            narrowed[name] = dist.around([t["params"][name] for t in best])
        else:
            narrowed[name] = dist
    fine = random_search(fine_objective or objective, narrowed, n_fine, seed + 1, maximize)
    return coarse, fine
