"""Transforms: each checked against a direct per-image computation, on one image and on a
batch, for arrays and Tensors, seeded."""
import numpy as np
import pytest

import pydl
from pydl.data import transforms as T
from pydl.data._resize import bilinear_matrix, resize, resized_crop
from pydl import kernels


@pytest.fixture
def batch(rng):
    return rng.random((6, 3, 10, 12)).astype(np.float32)


RANDOM = [T.RandomCrop(8, padding=2), T.RandomResizedCrop((7, 9)), T.RandomHorizontalFlip(), T.RandomVerticalFlip(),
          T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.RandomErasing(p=0.7), T.Cutout(4)]


@pytest.mark.parametrize("tf", RANDOM, ids=lambda t: type(t).__name__)
def test_random_transforms_are_seeded_and_keep_kind(tf, batch):
    pydl.manual_seed(0)
    a = tf(batch)
    pydl.manual_seed(0)
    b = tf(batch)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.ndim == 4 and a.shape[0] == 6
    one = tf(batch[0])
    assert one.shape == a.shape[1:]
    t = tf(pydl.tensor(batch))
    assert isinstance(t, pydl.Tensor) and t.shape == a.shape
    assert tf.batched


@pytest.mark.parametrize("tf", RANDOM, ids=lambda t: type(t).__name__)
def test_random_transforms_do_not_modify_their_input(tf, batch):
    before = batch.copy()
    tf(batch)
    np.testing.assert_array_equal(batch, before)


def test_random_crop_is_a_shifted_window_of_the_padded_image(batch):
    pydl.manual_seed(1)
    out = T.RandomCrop((10, 12), padding=2)(batch)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    shifts = set()
    for n in range(6):
        found = [(i, j) for i in range(5) for j in range(5) if np.array_equal(padded[n, :, i:i + 10, j:j + 12], out[n])]
        assert found, f"image {n} is not a window of its padded version"
        shifts.add(found[0])
    assert len(shifts) > 1          # independent offsets per image


def test_random_crop_padding_modes_and_errors(batch):
    out = T.RandomCrop(14, padding=2, padding_mode="reflect")(batch)
    assert out.shape == (6, 3, 14, 14)
    out = T.RandomCrop(16, pad_if_needed=True)(batch)
    assert out.shape == (6, 3, 16, 16)
    with pytest.raises(ValueError, match="larger than input image size"):
        T.RandomCrop(11)(batch)
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(8, padding=1, padding_mode="wrap")(batch)
    with pytest.raises(ValueError, match=r"expected an image \(C, H, W\) or a batch"):
        T.RandomCrop(8)(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="NumPy array or a pydl Tensor"):
        T.RandomCrop(8)([[1.0]])


def test_flips(batch):
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(batch), batch[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(batch), batch)
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(batch), batch[..., ::-1, :])
    pydl.manual_seed(0)
    out = T.RandomHorizontalFlip()(batch)
    flipped = [np.array_equal(out[n], batch[n, ..., ::-1]) for n in range(6)]
    kept = [np.array_equal(out[n], batch[n]) for n in range(6)]
    assert all(f or k for f, k in zip(flipped, kept))


def test_center_crop_and_resize(batch):
    np.testing.assert_array_equal(T.CenterCrop((6, 8))(batch), batch[:, :, 2:8, 2:10])
    assert T.CenterCrop(14)(batch).shape == (6, 3, 14, 14)
    ref = kernels.get("upsample_bilinear2d_forward", "reference")(batch, (15, 7), align_corners=False)
    np.testing.assert_allclose(T.Resize((15, 7))(batch), ref, atol=1e-6)


@pytest.mark.parametrize("out_size, in_size", [(28, 8), (5, 12), (7, 7), (1, 3), (3, 1)])
def test_bilinear_matrix_matches_the_reference_kernel(out_size, in_size, rng):
    x = rng.random((1, 1, in_size, in_size))
    ref = kernels.get("upsample_bilinear2d_forward", "reference")(x, (out_size, out_size), align_corners=False)
    m = bilinear_matrix(out_size, in_size)
    np.testing.assert_allclose(m @ x[0, 0] @ m.T, ref[0, 0], atol=1e-12)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)


def test_resize_without_the_kernel_agrees(monkeypatch, batch):
    import pydl.data._resize as R

    with_kernel = resize(batch, (20, 5))
    monkeypatch.setattr(R, "_kernel", lambda: None)
    np.testing.assert_allclose(R.resize(batch, (20, 5)), with_kernel, atol=1e-5)


def test_resized_crop_equals_crop_then_resize(batch, rng):
    top, left = np.array([0, 1, 2, 3, 0, 4]), np.array([0, 2, 1, 0, 5, 3])
    h, w = np.array([10, 5, 8, 4, 3, 6]), np.array([12, 7, 5, 9, 7, 2])
    out = resized_crop(batch, top, left, h, w, (9, 11))
    for n in range(6):
        crop = batch[n:n + 1, :, top[n]:top[n] + h[n], left[n]:left[n] + w[n]]
        ref = kernels.get("upsample_bilinear2d_forward", "reference")(crop, (9, 11), align_corners=False)
        np.testing.assert_allclose(out[n], ref[0], atol=1e-5)


def test_random_resized_crop_full_scale_is_a_resize(batch):
    tf = T.RandomResizedCrop((5, 6), scale=(1.0, 1.0), ratio=(12 / 10, 12 / 10))
    np.testing.assert_allclose(tf(batch), resize(batch, (5, 6)), atol=1e-5)


def test_normalize_and_to_tensor(batch):
    out = T.Normalize((0.5, 0.25, 0.0), (0.5, 0.5, 2.0))(batch)
    np.testing.assert_allclose(out[:, 1], (batch[:, 1] - 0.25) / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="3 channels"):
        T.Normalize((0.5, 0.5), (1.0, 1.0))(batch)
    with pytest.raises(ValueError, match="division by zero"):
        T.Normalize((0.0,), (0.0,))
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    t = T.ToTensor()(img)
    assert isinstance(t, pydl.Tensor) and t.shape == (4, 2, 3) and t.dtype == pydl.float32
    np.testing.assert_allclose(t.numpy()[1], img[..., 1] / 255.0)
    assert T.ToTensor()(np.zeros((5, 6), np.uint8)).shape == (1, 5, 6)
    assert T.ToTensor()(np.zeros((7, 5, 6, 3), np.float32)).shape == (7, 3, 5, 6)


def test_compose_and_batched_flag():
    comp = T.Compose([T.RandomCrop(4), T.Normalize((0.0,), (1.0,))])
    assert comp.batched and "RandomCrop" in repr(comp)
    assert not T.Compose([T.Lambda(np.flip, batched=False)]).batched
    with pytest.raises(TypeError, match="callable"):
        T.Compose([1])


def test_color_jitter(batch):
    np.testing.assert_allclose(T.ColorJitter()(batch), batch)
    pydl.manual_seed(0)
    out = T.ColorJitter(brightness=0.5)(batch)
    ratio = out / np.maximum(batch, 1e-6)
    unclipped = out < 1
    for n in range(6):       # one factor per image
        r = ratio[n][unclipped[n] & (batch[n] > 0.05)]
        assert np.allclose(r, r[0], rtol=1e-4) and 0.5 <= r[0] <= 1.5
    assert out.min() >= 0 and out.max() <= 1
    gray = np.repeat(batch[:, :1], 3, axis=1)
    np.testing.assert_allclose(T.ColorJitter(saturation=0.9, hue=0.4)(gray), gray, atol=1e-6)  # no colour, no change
    one = batch[:, :1]
    assert T.ColorJitter(0.2, 0.2, 0.2, 0.2)(one).shape == one.shape
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)


def test_hsv_round_trip(batch):
    h, s, v = T._rgb_to_hsv(batch.astype(np.float64))
    np.testing.assert_allclose(T._hsv_to_rgb(h, s, v), batch, atol=1e-6)
    import colorsys

    px = batch[0, :, 3, 4]
    np.testing.assert_allclose([h[0, 3, 4], s[0, 3, 4], v[0, 3, 4]], colorsys.rgb_to_hsv(*px.tolist()), atol=1e-6)


def test_random_erasing_and_cutout_fill_one_rectangle(batch):
    out = T.RandomErasing(p=1.0, value=-1.0)(batch)
    for n in range(6):
        mask = (out[n] == -1.0).all(axis=0)
        rows, cols = np.nonzero(mask)
        assert rows.size > 0
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()                                         # a filled rectangle
        np.testing.assert_array_equal(out[n][:, ~mask], batch[n][:, ~mask])
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(batch), batch)
    assert np.isfinite(T.RandomErasing(p=1.0, value="random")(batch)).all()
    out = T.RandomErasing(p=1.0, value=(1.0, 2.0, 3.0))(batch)
    assert (out[:, 2] == 3.0).any()
    cut = T.Cutout(4, value=-5.0)(batch)
    sizes = [(cut[n, 0] == -5.0).sum() for n in range(6)]
    assert all(0 < s <= 16 for s in sizes)
    with pytest.raises(ValueError, match="p should be between"):
        T.RandomErasing(p=2)


def test_mixup_mixes_images_and_labels(batch):
    y = np.arange(6) % 4
    x2, y2 = T.mixup(batch, y, alpha=1.0, num_classes=4, generator=0)
    assert y2.shape == (6, 4) and np.allclose(y2.sum(1), 1)
    rng = np.random.default_rng(0)
    lam = rng.beta(1.0, 1.0)
    perm = rng.permutation(6)
    np.testing.assert_allclose(x2, lam * batch + (1 - lam) * batch[perm], rtol=1e-5)
    np.testing.assert_allclose(y2, lam * np.eye(4)[y] + (1 - lam) * np.eye(4)[y[perm]], rtol=1e-5)
    xt, yt = T.MixUp(0.4, 4)(pydl.tensor(batch), pydl.tensor(y))
    assert isinstance(xt, pydl.Tensor) and isinstance(yt, pydl.Tensor) and yt.shape == (6, 4)
    with pytest.raises(ValueError, match="num_classes"):
        T.mixup(batch, y)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        T.mixup(batch, y, num_classes=3)
    with pytest.raises(ValueError, match="share their first dimension"):
        T.mixup(batch, y[:3], num_classes=4)


def test_cutmix_pastes_one_box_and_weights_labels_by_its_area(batch):
    y = np.arange(6) % 3
    x2, y2 = T.cutmix(batch, y, alpha=1.0, num_classes=3, generator=4)
    rng = np.random.default_rng(4)                       # the same draws, by hand
    lam = rng.beta(1.0, 1.0)
    perm = rng.permutation(6)
    H, W = batch.shape[2:]
    ch, cw = int(H * np.sqrt(1 - lam)), int(W * np.sqrt(1 - lam))
    cy, cx = int(rng.integers(0, H)), int(rng.integers(0, W))
    y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, H)
    x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, W)
    expected = batch.copy()
    expected[:, :, y0:y1, x0:x1] = batch[perm][:, :, y0:y1, x0:x1]
    np.testing.assert_array_equal(x2, expected)
    lam_box = 1 - (y1 - y0) * (x1 - x0) / (H * W)
    np.testing.assert_allclose(y2, lam_box * np.eye(3)[y] + (1 - lam_box) * np.eye(3)[y[perm]], rtol=1e-6)
    _, y3 = T.CutMix(1.0, 3)(batch, y)
    assert y3.shape == (6, 3) and np.allclose(y3.sum(1), 1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        T.cutmix(batch[:, 0, 0], y, num_classes=3)


def test_tta_averages_probabilities_over_views(rng):
    net = pydl.nn.Sequential(pydl.nn.Flatten(), pydl.nn.Linear(16, 3))
    x = rng.random((4, 1, 4, 4)).astype(np.float32)
    views = T.tta_views(hflip=True, shift=1)
    assert len(views) == 6
    out = T.TestTimeAugmentation(net, views)(x)
    ref = np.mean([pydl.nn.functional.softmax(net(pydl.tensor(v(x).copy())), dim=1).data for v in views], axis=0)
    np.testing.assert_allclose(np.exp(out.numpy()), ref, rtol=1e-5)
    assert net.training                                      # restored
    np.testing.assert_array_equal(views[3](x)[:, :, 1:], x[:, :, :-1])       # shifted down by one
    with pytest.raises(ValueError, match="views is empty"):
        T.TestTimeAugmentation(net, [])
