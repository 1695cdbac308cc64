"""Hyper-parameter search: grid, random with log-uniform sampling, coarse to fine."""
import math

import numpy as np
import pytest

from pydl.train import Choice, IntUniform, LogUniform, Uniform, coarse_to_fine, grid_search, random_search


def test_grid_tries_every_combination_best_first():
    seen = []
    result = grid_search(lambda p: seen.append(p) or -abs(p["lr"] - 0.01) - p["wd"], {"lr": [0.1, 0.01, 0.001],
                                                                                     "wd": [0.0, 1e-3]})
    assert len(seen) == 6 and len({tuple(sorted(p.items())) for p in seen}) == 6
    assert result.best_params == {"lr": 0.01, "wd": 0.0}
    scores = [t["score"] for t in result.trials]
    assert scores == sorted(scores, reverse=True)
    assert grid_search(lambda p: p["x"], {"x": [3, 1, 2]}, maximize=False).best_score == 1
    assert "score" in result.table()


def test_log_uniform_is_uniform_in_the_exponent():
    rng = np.random.default_rng(0)
    d = LogUniform(1e-6, 1e-1)
    xs = np.array([d.sample(rng) for _ in range(4000)])
    assert xs.min() >= 1e-6 and xs.max() <= 1e-1
    decades = np.histogram(np.log10(xs), bins=5, range=(-6, -1))[0]
    assert decades.min() > 0.8 * decades.max()          # each decade about equally often
    with pytest.raises(ValueError, match="0 < low"):
        LogUniform(0, 1)


def test_random_search_is_seeded_and_handles_failures():
    space = {"lr": LogUniform(1e-4, 1), "layers": IntUniform(1, 3), "act": Choice(["relu", "tanh"]), "bs": 64}
    a = random_search(lambda p: p["lr"], space, n_trials=10, seed=3)
    b = random_search(lambda p: p["lr"], space, n_trials=10, seed=3)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert all(t["params"]["bs"] == 64 and t["params"]["layers"] in (1, 2, 3) for t in a.trials)
    nan = random_search(lambda p: float("nan") if p["lr"] > 0.01 else p["lr"], space, n_trials=10, seed=3)
    assert math.isfinite(nan.best_score)                # NaN trials sink to the bottom
    with pytest.raises(ValueError, match="space is empty"):
        random_search(lambda p: 0, {}, 3)


def test_coarse_to_fine_narrows_around_the_best():
    target = 3e-3
    objective = lambda p: -abs(math.log10(p["lr"]) - math.log10(target))  # noqa: E731
    coarse, fine = coarse_to_fine(objective, {"lr": LogUniform(1e-6, 1.0), "u": Uniform(0, 1)}, n_coarse=30,
                                  n_fine=20, top=3, seed=1)
    spread = lambda r: np.ptp([math.log10(t["params"]["lr"]) for t in r.trials])  # noqa: E731
    assert spread(fine) < spread(coarse)
    assert fine.best_score >= coarse.best_score - 0.05
    assert abs(math.log10(fine.best_params["lr"]) - math.log10(target)) < 0.3
