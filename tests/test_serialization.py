"""Checkpoints: pydl.save / pydl.load (safetensors), atomic writes, clear errors."""
import json
import os
import struct
import sys

import numpy as np
import pytest

import pydl
from pydl import serialization
from pydl.serialization import CheckpointError

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def tensors_of_every_dtype(rng):
    return {
        "f32": pydl.tensor(rng.standard_normal((3, 4)).astype(np.float32)),
        "f64": pydl.tensor(rng.standard_normal(5)),
        "f16": pydl.tensor(rng.standard_normal(2).astype(np.float16)),
        "i64": pydl.tensor(rng.integers(-9, 9, (2, 3)).astype(np.int64)),
        "i32": pydl.tensor(np.arange(4, dtype=np.int32)),
        "u8": pydl.tensor(np.arange(6, dtype=np.uint8).reshape(2, 3)),
        "mask": pydl.tensor(np.array([True, False, True])),
        "scalar": pydl.tensor(np.array(2.5, np.float32)),
        "empty": pydl.tensor(np.zeros((0, 3), np.float32)),
    }


def assert_same_tensors(got, want):
    assert set(got) == set(want)
    for k in want:
        assert isinstance(got[k], pydl.Tensor), k
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k].data, want[k].data)


def model(in_features=4, out_features=3, seed=0):
    pydl.manual_seed(seed)
    return pydl.nn.Sequential(pydl.nn.Linear(in_features, 8), pydl.nn.ReLU(), pydl.nn.Linear(8, out_features))


def train_steps(net, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()


# ----------------------------------------------------------------------- round trips
def test_state_dict_round_trip_keeps_dtypes(tmp_path, rng):
    sd = tensors_of_every_dtype(rng)
    path = tmp_path / "sd.safetensors"
    pydl.save(sd, path)
    assert_same_tensors(pydl.load(path), sd)
    assert_same_tensors(pydl.load(str(path)), sd)


def test_model_state_dict_is_a_plain_safetensors_file(tmp_path, rng):
    net = model()
    path = tmp_path / "model.safetensors"
    pydl.save(net.state_dict(), path)
    plain = safetensors_numpy.load_file(str(path))  # any safetensors reader sees the names
    assert set(plain) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    np.testing.assert_array_equal(plain["0.weight"], net.state_dict()["0.weight"].data)
    # and a safetensors file from elsewhere loads as {name: Tensor}
    foreign = tmp_path / "foreign.safetensors"
    safetensors_numpy.save_file({"w": np.ones((2, 2), np.float32), "steps": np.array([3], np.int64)}, str(foreign))
    loaded = pydl.load(foreign)
    assert set(loaded) == {"w", "steps"} and loaded["steps"].dtype == np.int64 and loaded["w"].dtype == np.float32


def test_model_and_optimizer_resume_identically(tmp_path, rng):
    x = pydl.tensor(rng.standard_normal((16, 4)).astype(np.float32))
    y = pydl.tensor(rng.standard_normal((16, 3)).astype(np.float32))
    net = model()
    opt = pydl.optim.AdamW(net.parameters(), lr=1e-2, amsgrad=True)
    sched = pydl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    train_steps(net, opt, x, y, 3)
    sched.step()
    path = tmp_path / "ckpt.safetensors"
    pydl.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
               "epoch": 3, "note": "after warm-up", "best": 0.25, "done": False, "extra": None}, path)

    ckpt = pydl.load(path)
    assert ckpt["epoch"] == 3 and ckpt["note"] == "after warm-up" and ckpt["best"] == 0.25
    assert ckpt["done"] is False and ckpt["extra"] is None
    saved_opt = ckpt["optimizer"]
    assert list(saved_opt["state"]) == [0, 1, 2, 3]  # integer indices come back as integers
    assert saved_opt["state"][0]["step"] == 3 and saved_opt["param_groups"][0]["betas"] == (0.9, 0.999)
    assert saved_opt["param_groups"][0]["params"] == [0, 1, 2, 3]

    net2 = model(seed=1)
    opt2 = pydl.optim.AdamW(net2.parameters(), lr=1.0)
    sched2 = pydl.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    net2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    for _ in range(3):
        train_steps(net, opt, x, y, 1)
        train_steps(net2, opt2, x, y, 1)
        sched.step()
        sched2.step()
    for (k, a), (k2, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a.data, b.data)


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "a": {"b": pydl.tensor([1.0, 2.0]), 7: "seven"},
        "list": [pydl.tensor(np.arange(3)), 1.5, [None, True]],
        "pair": (0.9, 0.999),
        "nan": float("nan"),
        "inf": float("-inf"),
        "np_scalar": np.float32(0.5),
        "array": np.eye(2, dtype=np.float64),
    }
    path = tmp_path / "tree.safetensors"
    pydl.save(obj, path)
    got = pydl.load(path)
    assert got["a"][7] == "seven" and got["pair"] == (0.9, 0.999) and got["list"][1:] == [1.5, [None, True]]
    assert np.isnan(got["nan"]) and got["inf"] == float("-inf") and got["np_scalar"] == 0.5
    assert got["list"][0].dtype == np.int64 and isinstance(got["array"], pydl.Tensor)
    np.testing.assert_array_equal(got["array"].data, np.eye(2))
    with safetensors_numpy.safe_open(str(path), "np") as f:  # tensors named by their dotted path
        assert sorted(f.keys()) == ["a.b", "array", "list.0"]


def test_loaded_tensors_are_writable(tmp_path):
    path = tmp_path / "w.safetensors"
    pydl.save({"w": pydl.tensor([1.0, 2.0])}, path)
    w = pydl.load(path)["w"]
    w.data += 1
    np.testing.assert_array_equal(w.data, [2.0, 3.0])


def test_single_tensor(tmp_path):
    pydl.save(pydl.tensor([[1, 2]]), tmp_path / "t.safetensors")
    t = pydl.load(tmp_path / "t.safetensors")
    assert isinstance(t, pydl.Tensor) and t.dtype == np.int64 and t.shape == (1, 2)


# ------------------------------------------------------------------------- atomicity
def leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.safetensors"
    pydl.save({"w": pydl.tensor(np.ones(1000, np.float32))}, path)
    old_bytes = path.read_bytes()

    class Crash(RuntimeError):
        pass

    def half_then_crash(f, data):
        f.write(data[: len(data) // 2])
        raise Crash("simulated crash")

    def crash(*args, **kwargs):
        raise Crash("simulated crash")

    if where == "write":
        monkeypatch.setattr(serialization, "_write_all", half_then_crash)
    elif where == "fsync":
        monkeypatch.setattr(serialization.os, "fsync", crash)
    else:
        monkeypatch.setattr(serialization.os, "replace", crash)
    with pytest.raises(Crash):
        pydl.save({"w": pydl.tensor(np.zeros(2000, np.float32))}, path)
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(pydl.load(path)["w"].data, np.ones(1000, np.float32))


def test_crash_on_first_save_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "new.safetensors"
    monkeypatch.setattr(serialization, "_write_all", lambda f, data: (f.write(data[:10]), 1 / 0))
    with pytest.raises(ZeroDivisionError):
        pydl.save({"w": pydl.tensor([1.0])}, path)
    assert os.listdir(tmp_path) == []


def test_save_replaces_and_keeps_usual_permissions(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    pydl.save({"w": pydl.tensor([1.0])}, path)
    pydl.save({"w": pydl.tensor([2.0])}, path)
    assert pydl.load(path)["w"].data.tolist() == [2.0]
    assert leftovers(tmp_path) == []
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pydl.save({"w": pydl.tensor([1.0])}, tmp_path / "nope" / "ckpt.safetensors")


# ---------------------------------------------------------------------- bad files
@pytest.fixture
def good_file(tmp_path, rng):
    path = tmp_path / "good.safetensors"
    pydl.save({"model": tensors_of_every_dtype(rng), "epoch": 1}, path)
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 20, "header", "data-1"])
def test_truncated_file(good_file, tmp_path, keep):
    data = good_file.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    cut = {"header": 8 + n, "data-1": len(data) - 1}.get(keep, keep)
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="truncated|not a safetensors file") as info:
        pydl.load(bad)
    assert str(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_random_bytes_and_other_formats(tmp_path, rng):
    cases = {
        "random.bin": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text.txt": b"epoch: 3\nloss: 0.25\n" * 20,
        "zeros.bin": bytes(64),
        "bad-json.safetensors": struct.pack("<Q", 10) + b"{not json}" + bytes(16),
        "json-list.safetensors": struct.pack("<Q", 2) + b"[]",
    }
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(10))
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for path in [tmp_path / n for n in cases] + [npy]:
        with pytest.raises(CheckpointError) as info:
            pydl.load(path)
        assert str(path) in str(info.value), str(info.value)


def test_flipped_byte_in_tensor_data(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    data[-3] ^= 0xFF
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="CRC-32"):
        pydl.load(bad)


def test_corrupted_metadata(good_file, tmp_path):
    data = good_file.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"]["pydl"] = header["__metadata__"]["pydl"][:-5]
    new_header = json.dumps(header).encode()
    new_header += b" " * (-len(new_header) % 8)
    bad = tmp_path / "meta.safetensors"
    bad.write_bytes(struct.pack("<Q", len(new_header)) + new_header + data[8 + n :])
    with pytest.raises(CheckpointError, match="metadata"):
        pydl.load(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        pydl.load(tmp_path / "absent.safetensors")


def test_wrong_shapes_raise_and_change_nothing(tmp_path):
    path = tmp_path / "small.safetensors"
    pydl.save(model(4, 3).state_dict(), path)
    other = model(4, 5, seed=2)
    before = {k: v.data.copy() for k, v in other.state_dict().items()}
    with pytest.raises((RuntimeError, ValueError), match="2.weight|size mismatch|shape"):
        other.load_state_dict(pydl.load(path))
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v.data, before[k])


def test_optimizer_state_for_another_model_raises_and_changes_nothing(tmp_path, rng):
    net = model()
    opt = pydl.optim.Adam(net.parameters(), lr=0.1)
    x = pydl.tensor(rng.standard_normal((4, 4)).astype(np.float32))
    y = pydl.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    train_steps(net, opt, x, y, 1)
    path = tmp_path / "opt.safetensors"
    pydl.save(opt.state_dict(), path)
    other = model(4, 5)
    opt2 = pydl.optim.Adam(other.parameters(), lr=0.5)
    with pytest.raises(ValueError, match="shape"):
        opt2.load_state_dict(pydl.load(path))
    assert opt2.param_groups[0]["lr"] == 0.5 and len(opt2.state) == 0


# --------------------------------------------------------------------- bad input
def test_unsupported_objects(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=r"cannot save a object \(at \['a'\]\)"):
        pydl.save({"a": object()}, path)
    with pytest.raises(TypeError, match="dict keys must be strings or integers"):
        pydl.save({(1, 2): 3}, path)
    with pytest.raises(TypeError, match="complex128"):
        pydl.save({"c": np.ones(2, np.complex128)}, path)
    with pytest.raises(ValueError, match="two tensors would be stored under the name 'a.b'"):
        pydl.save({"a.b": pydl.tensor([1.0]), "a": {"b": pydl.tensor([2.0])}}, path)
    assert not path.exists() and leftovers(tmp_path) == []


def test_missing_safetensors_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        pydl.save({"w": pydl.tensor([1.0])}, tmp_path / "x.safetensors")
    with pytest.raises(ImportError, match="pip install safetensors"):
        pydl.load(tmp_path / "x.safetensors")
