"""Contrastive and self-distillation losses, written as the lectures state them.

Every loss here is a cross-entropy over similarity scores: "every instance is its own
class", the positive is the correct label and the negatives are the wrong ones.
"""
import numpy as np

import pydl
import pydl.nn.functional as F
from ..tensor import Tensor

__all__ = ["DINOLoss", "clip_loss", "dino_loss", "info_nce", "moco_loss", "nt_xent"]

_MASKED = -1e9  # a score whose exp is exactly 0 in float32 and float64, without inf - inf in the backward


def _check2d(x, name, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{op}: {name} must have shape (N, D), got {x.shape}")


def l2_normalize(x, eps=1e-12):
    """u / ||u|| along the last dim (the cosine similarity's normalisation)."""
    return x / (x * x).sum(dim=-1, keepdim=True).clamp(min=eps * eps).sqrt()


def _arange(n):
    return pydl.tensor(np.arange(n, dtype=np.int64))


def nt_xent(z1, z2, temperature=0.5):
    """SimCLR's NT-Xent: z1, z2 (N, D) projections of two views -> scalar.

    Stack the 2N projections, take the 2N x 2N cosine-similarity matrix
    s_ij = u_i^T u_j / (||u_i|| ||u_j||), drop the diagonal, and for each i take the
    softmax cross-entropy whose correct class is i's other view:

        l(i, j) = -log exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau),   L = mean over the 2N anchors

    >>> z = pydl.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(nt_xent(z, z, temperature=0.1).item(), 3)  # positives identical, negatives orthogonal
    0.0
    """
    op = "nt_xent"
    _check2d(z1, "z1", op)
    _check2d(z2, "z2", op)
    if z1.shape != z2.shape:
        raise ValueError(f"{op}: z1 {z1.shape} and z2 {z2.shape} must have the same shape")
    if temperature <= 0:
        raise ValueError(f"{op}: temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    u = l2_normalize(pydl.cat([z1, z2], dim=0))             # (2N, D)
    sim = (u @ u.t()) / temperature                          # (2N, 2N)
    sim = sim.masked_fill(pydl.tensor(np.eye(2 * n, dtype=bool)), _MASKED)
    targets = pydl.tensor(np.concatenate([np.arange(n, 2 * n), np.arange(n)]).astype(np.int64))
    return F.cross_entropy(sim, targets)


def info_nce(z, c, W):
    """CPC's InfoNCE with the bilinear score s(z_j, c_i) = z_j^T W c_i.

    z (N, Dz) the future codes z_{t+k}, c (N, Dc) the contexts c_t, W (Dz, Dc). Row i's
    positive is z_i; the other samples' codes in the batch are its negatives:
    L = -mean_i log exp(s_ii) / sum_j exp(s_ij).
    """
    op = "info_nce"
    _check2d(z, "z", op)
    _check2d(c, "c", op)
    if z.shape[0] != c.shape[0]:
        raise ValueError(f"{op}: z and c need the same batch size, got {z.shape[0]} and {c.shape[0]}")
    if tuple(W.shape) != (z.shape[1], c.shape[1]):
        raise ValueError(f"{op}: W must have shape ({z.shape[1]}, {c.shape[1]}), got {W.shape}")
    scores = (c @ W.t()) @ z.t()                          # scores[i, j] = c_i^T W^T z_j = z_j^T W c_i
    return F.cross_entropy(scores, _arange(z.shape[0]))


def moco_loss(q, k, queue, temperature=0.07):
    """MoCo's loss: q (N, D) queries, k (N, D) their positive keys (from the momentum
    encoder, no gradient), queue (K, D) negative keys. All are L2-normalised here.

    logits = [q . k_+, q . queue^T] / tau, shape (N, 1 + K), class 0 correct.
    """
    op = "moco_loss"
    _check2d(q, "q", op)
    _check2d(k, "k", op)
    _check2d(queue, "queue", op)
    if q.shape != k.shape or queue.shape[1] != q.shape[1]:
        raise ValueError(f"{op}: q {q.shape}, k {k.shape} and queue {queue.shape} must share D")
    q = l2_normalize(q)
    k = l2_normalize(k.detach())
    neg = l2_normalize(queue.detach())
    pos = (q * k).sum(dim=1, keepdim=True)               # (N, 1)
    logits = pydl.cat([pos, q @ neg.t()], dim=1) / temperature
    return F.cross_entropy(logits, pydl.zeros(q.shape[0], dtype=pydl.int64))


def clip_loss(image_emb, text_emb, temperature=0.07):
    """CLIP's symmetric two-tower loss: image_emb (N, D), text_emb (N, D), pair i matches pair i.

    logits = u_img u_txt^T / tau; L = (CE(logits, arange) + CE(logits^T, arange)) / 2.
    """
    op = "clip_loss"
    _check2d(image_emb, "image_emb", op)
    _check2d(text_emb, "text_emb", op)
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"{op}: image_emb {image_emb.shape} and text_emb {text_emb.shape} must match")
    logits = (l2_normalize(image_emb) @ l2_normalize(text_emb).t()) / temperature
    y = _arange(image_emb.shape[0])
    return (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y)) * 0.5


def dino_loss(student, teacher, center, student_temp=0.1, teacher_temp=0.04):
    """DINO's cross-entropy between teacher and student over pairs of different views.

    student: list of S Tensors (N, K) (all views' logits), teacher: list of T Tensors (N, K)
    (the global views, in the same order as the first T student views), center (K,).
    The teacher is centred (minus ``center``) and sharpened (a low ``teacher_temp``):

        P_t = softmax((g_t - c) / tau_t),   L = mean over pairs (i != j) of
              mean_n -sum_k P_t[i][n, k] log softmax(g_s[j] / tau_s)[n, k]

    No gradient flows into the teacher.
    """
    if not student or not teacher:
        raise ValueError("dino_loss: need at least one student and one teacher view")
    c = center.data if isinstance(center, Tensor) else np.asarray(center)
    targets = [F.softmax((t.detach() - pydl.tensor(c.astype(t.data.dtype))) / teacher_temp, dim=-1)
               for t in teacher]
    logs = [F.log_softmax(s / student_temp, dim=-1) for s in student]
    total, pairs = None, 0
    for i, p in enumerate(targets):
        for j, logp in enumerate(logs):
            if i == j:
                continue
            term = -(p * logp).sum(dim=-1).mean()
            total = term if total is None else total + term
            pairs += 1
    if pairs == 0:
        raise ValueError("dino_loss: need at least two views (no pair of different views)")
    return total / pairs


class DINOLoss:
    """DINO's loss with its running centre: ``loss = dino(student_views, teacher_views)``
    computes :func:`dino_loss` with the current centre, then updates it

        c <- m c + (1 - m) mean over the batch and the teacher views of g_t
    """

    def __init__(self, out_dim, student_temp=0.1, teacher_temp=0.04, center_momentum=0.9):
        self.center = np.zeros(out_dim, dtype=np.float64)
        self.student_temp, self.teacher_temp, self.center_momentum = student_temp, teacher_temp, center_momentum

    def __call__(self, student, teacher):
        loss = dino_loss(student, teacher, self.center, self.student_temp, self.teacher_temp)
        self.update_center(teacher)
        return loss

    def update_center(self, teacher):
        batch_center = np.concatenate([np.asarray(t.data, dtype=np.float64) for t in teacher]).mean(axis=0)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)
