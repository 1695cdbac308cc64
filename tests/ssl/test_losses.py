"""Each self-supervised loss against a direct NumPy transcription of its formula."""
import doctest

import numpy as np
import pytest

import pydl
import pydl.ssl as S


def _cos(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def _log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _softmax(x, axis=-1):
    return np.exp(_log_softmax(x, axis))


def test_nt_xent_matches_formula(rng):
    N, D, tau = 5, 7, 0.3
    z1, z2 = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    z = np.concatenate([z1, z2])
    s = np.array([[_cos(z[i], z[j]) for j in range(2 * N)] for i in range(2 * N)])   # the 2N x 2N matrix
    total = 0.0
    for i in range(2 * N):
        j = (i + N) % (2 * N)                          # i's other view
        denom = sum(np.exp(s[i, k] / tau) for k in range(2 * N) if k != i)
        total += -np.log(np.exp(s[i, j] / tau) / denom)
    got = S.nt_xent(pydl.tensor(z1), pydl.tensor(z2), temperature=tau).item()
    assert got == pytest.approx(total / (2 * N), rel=1e-10)


def test_nt_xent_gradient_and_errors(rng):
    z1 = pydl.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    z2 = pydl.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    S.nt_xent(z1, z2).backward()
    assert np.isfinite(z1.grad.detach().numpy()).all() and np.abs(z1.grad.detach().numpy()).sum() > 0
    assert pydl.autograd.gradcheck(lambda a, b: S.nt_xent(a, b, 0.5), (z1.detach().requires_grad_(),
                                                                        z2.detach().requires_grad_()))
    with pytest.raises(ValueError, match="same shape"):
        S.nt_xent(pydl.zeros(3, 2), pydl.zeros(4, 2))
    with pytest.raises(ValueError, match="temperature"):
        S.nt_xent(pydl.ones(3, 2), pydl.ones(3, 2), temperature=0)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        S.nt_xent(pydl.ones(3), pydl.ones(3))


def test_info_nce_bilinear(rng):
    N, Dz, Dc = 6, 4, 3
    z, c, W = rng.standard_normal((N, Dz)), rng.standard_normal((N, Dc)), rng.standard_normal((Dz, Dc))
    score = np.array([[z[j] @ W @ c[i] for j in range(N)] for i in range(N)])       # s(z_j, c_i) = z_j^T W c_i
    expect = -np.mean([np.log(np.exp(score[i, i]) / np.exp(score[i]).sum()) for i in range(N)])
    got = S.info_nce(pydl.tensor(z), pydl.tensor(c), pydl.tensor(W)).item()
    assert got == pytest.approx(expect, rel=1e-10)
    with pytest.raises(ValueError, match="W must have shape"):
        S.info_nce(pydl.tensor(z), pydl.tensor(c), pydl.tensor(W.T))


def test_moco_loss(rng):
    N, K, D, tau = 4, 9, 5, 0.07
    q, k, queue = rng.standard_normal((N, D)), rng.standard_normal((N, D)), rng.standard_normal((K, D))
    expect = 0.0
    for n in range(N):
        logits = np.array([_cos(q[n], k[n])] + [_cos(q[n], queue[j]) for j in range(K)]) / tau
        expect += -_log_softmax(logits)[0]
    qt = pydl.tensor(q, requires_grad=True)
    kt = pydl.tensor(k, requires_grad=True)
    loss = S.moco_loss(qt, kt, pydl.tensor(queue), temperature=tau)
    assert loss.item() == pytest.approx(expect / N, rel=1e-10)
    loss.backward()
    assert kt.grad is None   # keys come from the momentum encoder: no gradient


def test_clip_symmetric(rng):
    N, D, tau = 5, 4, 0.1
    a, b = rng.standard_normal((N, D)), rng.standard_normal((N, D))
    L = np.array([[_cos(a[i], b[j]) for j in range(N)] for i in range(N)]) / tau
    expect = (-np.diag(_log_softmax(L, 1)).mean() - np.diag(_log_softmax(L, 0)).mean()) / 2
    assert S.clip_loss(pydl.tensor(a), pydl.tensor(b), tau).item() == pytest.approx(expect, rel=1e-10)
    # symmetric in its two towers
    assert S.clip_loss(pydl.tensor(b), pydl.tensor(a), tau).item() == pytest.approx(expect, rel=1e-10)


def test_dino_loss_and_center(rng):
    N, K, ts, tt = 3, 6, 0.1, 0.04
    student = [rng.standard_normal((N, K)) for _ in range(4)]   # 2 global + 2 local views
    teacher = [rng.standard_normal((N, K)) for _ in range(2)]
    c = rng.standard_normal(K) * 0.1
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        P = _softmax((t - c) / tt)                                # centring, then sharpening
        for j, s in enumerate(student):
            if i == j:
                continue
            total += (-(P * _log_softmax(s / ts)).sum(1)).mean()
            pairs += 1
    got = S.dino_loss([pydl.tensor(s) for s in student], [pydl.tensor(t) for t in teacher], c, ts, tt)
    assert got.item() == pytest.approx(total / pairs, rel=1e-10)
    # the running centre: c <- m c + (1 - m) mean of the teacher outputs
    loss = S.DINOLoss(K, ts, tt, center_momentum=0.9)
    loss.center = c.copy()
    tt_list = [pydl.tensor(t, requires_grad=True) for t in teacher]
    out = loss([pydl.tensor(s, requires_grad=True) for s in student], tt_list)
    assert out.item() == pytest.approx(total / pairs, rel=1e-10)
    np.testing.assert_allclose(loss.center, 0.9 * c + 0.1 * np.concatenate(teacher).mean(0), rtol=1e-12)
    out.backward()
    assert tt_list[0].grad is None   # the teacher gets no gradient
    with pytest.raises(ValueError, match="two views"):
        S.dino_loss([pydl.tensor(student[0])], [pydl.tensor(teacher[0])], c)


def test_docstrings():
    import pydl.ssl.losses, pydl.ssl.moco, pydl.ssl.pretext  # noqa: E401
    for mod in (pydl.ssl.losses, pydl.ssl.moco, pydl.ssl.pretext):
        r = doctest.testmod(mod, extraglobs={"pydl": pydl, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert r.failed == 0, mod.__name__
