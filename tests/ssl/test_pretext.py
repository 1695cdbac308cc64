"""Pretext transforms: each input / label pair as the task defines it."""
import numpy as np
import pytest

import pydl.ssl as S
from pydl.ssl.pretext import NEIGHBOURS


def _img(rng, c=1, h=9, w=9):
    return rng.standard_normal((c, h, w))


def test_rotation(rng):
    x = _img(rng)
    for k in range(4):
        r = S.rotate(x, k)
        np.testing.assert_array_equal(r[0], np.rot90(x[0], k))
    np.testing.assert_array_equal(S.rotate(S.rotate(x, 1), 3), x)
    img, k = S.Rotation(seed=0)(x)
    np.testing.assert_array_equal(img, S.rotate(x, k))
    imgs, labels = S.rotation_batch(rng.standard_normal((3, 1, 4, 4)))
    assert imgs.shape == (12, 1, 4, 4) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    with pytest.raises(ValueError, match="quarter"):
        S.rotate(x, 4)


def test_relative_patch(rng):
    x = np.arange(81.0).reshape(1, 9, 9)
    for label, (r, c) in enumerate(NEIGHBOURS):
        centre, patch, lab = S.relative_patch(x, label=label)
        assert lab == label
        np.testing.assert_array_equal(centre, x[:, 3:6, 3:6])
        np.testing.assert_array_equal(patch, x[:, 3 * r:3 * r + 3, 3 * c:3 * c + 3])
    _, _, lab = S.relative_patch(x, rng=0)
    assert 0 <= lab < 8


def test_jigsaw_roundtrip(rng):
    perms = S.permutation_set(10, seed=0)
    assert perms.shape == (10, 9) and perms[0].tolist() == list(range(9))
    assert len({tuple(p) for p in perms}) == 10
    x = _img(rng, c=2)
    for idx in range(10):
        tiles = S.jigsaw(x, idx, perms)
        assert tiles.shape == (9, 2, 3, 3)
        np.testing.assert_array_equal(tiles[0], x[:, (perms[idx][0] // 3) * 3:(perms[idx][0] // 3) * 3 + 3,
                                                   (perms[idx][0] % 3) * 3:(perms[idx][0] % 3) * 3 + 3])
        np.testing.assert_array_equal(S.unjigsaw(tiles, idx, perms), x)
    tiles, idx = S.Jigsaw(10)(x)
    np.testing.assert_array_equal(S.unjigsaw(tiles, idx, S.Jigsaw(10).permutations), x)


def test_inpainting(rng):
    x = _img(rng, c=3, h=8, w=8)
    masked, patch, mask = S.inpainting(x, 3, top=2, left=4)
    np.testing.assert_array_equal(patch, x[:, 2:5, 4:7])
    assert mask.sum() == 9 and (masked[:, mask] == 0).all()
    np.testing.assert_array_equal(masked[:, ~mask], x[:, ~mask])
    with pytest.raises(ValueError, match="size"):
        S.inpainting(x, 9)


def test_lab_roundtrip_and_known_colours(rng):
    rgb = rng.uniform(size=(3, 5, 5))
    np.testing.assert_allclose(S.lab_to_rgb(S.rgb_to_lab(rgb)), rgb, atol=1e-6)
    white = S.rgb_to_lab(np.ones((3, 1, 1)))[:, 0, 0]
    black = S.rgb_to_lab(np.zeros((3, 1, 1)))[:, 0, 0]
    red = S.rgb_to_lab(np.array([1.0, 0, 0]).reshape(3, 1, 1))[:, 0, 0]
    np.testing.assert_allclose(white, [100, 0, 0], atol=1e-3)
    np.testing.assert_allclose(black, [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(red, [53.24, 80.09, 67.20], atol=0.05)   # the standard sRGB red in Lab
    L, ab = S.colorization_pair(rgb)
    assert L.shape == (1, 5, 5) and ab.shape == (2, 5, 5)
    # grey has no colour: a = b = 0
    _, ab = S.colorization_pair(np.full((3, 2, 2), 0.4))
    np.testing.assert_allclose(ab, 0, atol=1e-4)


def test_simclr_augment(rng):
    x = rng.uniform(size=(6, 1, 8, 8)).astype(np.float32)
    a, b = S.simclr_augment(x, rng=0), S.simclr_augment(x, rng=1)
    assert a.shape == x.shape and a.dtype == np.float32 and not np.allclose(a, b)
