"""Checkpoints: ``pydl.save(obj, path)`` / ``pydl.load(path)`` in the safetensors format.

A safetensors file is an 8-byte little-endian header length, a JSON header (each tensor's
dtype, shape and byte range, plus a ``__metadata__`` dict of strings) and the raw tensor
bytes. Nothing in it is executable, so loading a file from elsewhere runs no code (unlike
pickle). pydl writes it with the ``safetensors`` package's NumPy API (``pip install
safetensors``; NumPy stays pydl's only required dependency).

What can be saved: a tree of dicts (string or integer keys), lists and tuples whose leaves
are Tensors (or NumPy arrays), numbers, strings, booleans and ``None``. That covers

* a model's ``state_dict()`` (name -> Tensor): the file is a plain safetensors file whose
  tensor names are the state-dict keys, readable by any safetensors loader (PyTorch's too);
* an optimizer's ``state_dict()``: its buffers become tensors named by their path
  (``state.0.exp_avg``), and everything else (step counts, hyper-parameters, the
  ``param_groups`` structure) goes, as JSON, into the header's ``__metadata__``;
* a bundle such as ``{"model": ..., "optimizer": ..., "scheduler": ..., "epoch": 3}``.

Tensor names are the keys on the path joined by dots (``model.fc.weight``); two leaves that
would get the same name are refused. The JSON "skeleton" in the metadata records the exact
structure (key types, tuples, numbers) so ``load`` gives back what was saved, with every
tensor as a pydl Tensor of the saved dtype (float32 stays float32, int64 stays int64). Each
tensor's CRC-32 is stored too, so flipped bytes are detected, not loaded.

Writing is atomic: the bytes go to a temporary file in the same directory, are flushed and
fsync'ed, and the file is renamed over the destination with ``os.replace``; a crash at any
point leaves either the old file or the new one under the final name, never half of one.
A truncated, corrupted or foreign file raises :class:`CheckpointError` (a ``ValueError``)
naming the path.

Example:
    >>> import pydl, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> pydl.save({"weights": {"w": pydl.tensor([1.0, 2.0])}, "epoch": 3}, path)
    >>> ckpt = pydl.load(path)
    >>> ckpt["epoch"], ckpt["weights"]["w"].dtype
    (3, dtype('float32'))
"""
import contextlib
import json
import os
import struct
import uuid
import zlib

import numpy as np

__all__ = ["CheckpointError", "load", "save"]

_META_KEY = "pydl"  # __metadata__ entry holding the JSON skeleton
_FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupted, or not safetensors."""


def _safetensors_numpy():
    try:
        from safetensors import numpy as st
    except ImportError as e:
        raise ImportError(
            "pydl.save / pydl.load store checkpoints in the safetensors format and need the safetensors "
            "package: pip install safetensors"
        ) from e
    return st


# ---------------------------------------------------------------------------- encoding
def _tensor_class():
    from .tensor import Tensor

    return Tensor


def _host_array(value):
    arr = value.data if isinstance(value, _tensor_class()) else value
    if not isinstance(arr, np.ndarray):  # CuPy
        arr = arr.get()
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr if arr.flags.c_contiguous else arr.copy(order="C")  # (np.ascontiguousarray makes 0-d 1-d)


def _where(path):
    return "".join(f"[{k!r}]" for k in path) or "the top level"


def _encode(value, path, tensors, checksums):
    """JSON skeleton of ``value``; tensors go into ``tensors`` under their dotted path."""
    if isinstance(value, (_tensor_class(), np.ndarray)) or hasattr(value, "__cuda_array_interface__"):
        arr = _host_array(value)
        if arr.dtype.kind not in "biuf" or arr.dtype.itemsize > 8:
            raise TypeError(
                f"pydl.save: the tensor at {_where(path)} has dtype {arr.dtype}, which safetensors cannot store"
            )
        key = ".".join(str(k) for k in path) or "tensor"
        if key in tensors:
            raise ValueError(
                f"pydl.save: two tensors would be stored under the name {key!r} (at {_where(path)}); "
                "rename a key so that the dotted paths differ"
            )
        tensors[key] = arr
        checksums[key] = zlib.crc32(arr.reshape(-1).view(np.uint8)) if arr.size else 0
        return {"__tensor__": key}
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"pydl.save: dict keys must be strings or integers, got {k!r} at {_where(path)}")
            items.append([k, _encode(v, path + (k,), tensors, checksums)])
        return {"__dict__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, path + (i,), tensors, checksums) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, path + (i,), tensors, checksums) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"pydl.save: cannot save a {type(value).__name__} (at {_where(path)}): a checkpoint holds Tensors, "
        "arrays, dicts, lists, tuples, numbers, strings and None"
    )


def _decode(node, arrays, where):
    if isinstance(node, list):
        return [_decode(v, arrays, where) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            key = node["__tensor__"]
            if key not in arrays:
                raise CheckpointError(
                    f"pydl.load: {where} is corrupted: its metadata names a tensor {key!r} it does not hold"
                )
            return _tensor_class()(arrays[key])
        if "__tuple__" in node:
            return tuple(_decode(v, arrays, where) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: _decode(v, arrays, where) for k, v in node["__dict__"]}
        raise CheckpointError(f"pydl.load: {where} is corrupted: unknown node {sorted(node)} in its metadata")
    return node


# ---------------------------------------------------------------------------- writing
def _write_all(f, data):
    """Write ``data`` to the open file ``f`` (a separate function so tests can break it)."""
    f.write(data)


def _fsync_dir(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"pydl.save: the directory of {path} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    # 0o666 minus the umask: the same permissions a plain open() would give
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def save(obj, path):
    """Save ``obj`` (a state dict, or a dict bundling several with plain values) to ``path``
    as a safetensors file, atomically.

    Args:
        obj: a Tensor, or a dict / list / tuple tree of Tensors, arrays, numbers, strings,
            booleans and ``None`` (dict keys: strings or integers).
        path (str or os.PathLike): destination; its directory must exist. An existing file
            is replaced only once the new one is completely on disk.

    Raises:
        ImportError: the ``safetensors`` package is missing (``pip install safetensors``).
        TypeError: something in ``obj`` cannot be stored (the message says where).
        ValueError: two tensors would get the same dotted name.
    """
    st = _safetensors_numpy()
    path = os.fspath(path)
    tensors, checksums = {}, {}
    tree = _encode(obj, (), tensors, checksums)
    skeleton = {"version": _FORMAT_VERSION, "tree": tree, "crc32": checksums}
    # "format": "pt" lets PyTorch-side tools (transformers) read a model state dict as is
    metadata = {"format": "pt", _META_KEY: json.dumps(skeleton, separators=(",", ":"))}
    _atomic_write(path, st.save(tensors, metadata=metadata))


# ---------------------------------------------------------------------------- reading
def _parse_header(data, where):
    """The JSON header of a safetensors byte string, with every check a truncated or
    foreign file fails, in plain words."""
    if len(data) < 8:
        raise CheckpointError(f"pydl.load: {where} is not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckpointError(
            f"pydl.load: {where} is truncated or not a safetensors file: its header claims {n} bytes but the file "
            f"has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"pydl.load: {where} is not a safetensors file (its header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"pydl.load: {where} is not a safetensors file (its header is not a JSON object)")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"pydl.load: {where} is corrupted: bad header entry for tensor {name!r}") from None
    available = len(data) - 8 - n
    if end > available:
        raise CheckpointError(
            f"pydl.load: {where} is truncated: its tensors need {end} bytes of data but only {available} remain"
        )
    return header


def load(path):
    """Load what :func:`save` wrote (or any safetensors file) from ``path``.

    Returns the saved structure with every tensor as a pydl Tensor of the saved dtype; a
    safetensors file written elsewhere (no pydl metadata) comes back as ``{name: Tensor}``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError (a ValueError): the file is truncated, corrupted or not safetensors.
    """
    st = _safetensors_numpy()
    where = os.fspath(path)
    with open(where, "rb") as f:
        data = f.read()
    header = _parse_header(data, where)
    try:
        arrays = st.load(data)
    except Exception as e:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"pydl.load: {where} is not a valid safetensors file ({e})") from None
    arrays = {k: (a if a.flags.writeable else a.copy()) for k, a in arrays.items()}
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta:
        Tensor = _tensor_class()
        return {name: Tensor(arrays[name]) for name in header if name != "__metadata__"}
    try:
        skeleton = json.loads(meta[_META_KEY])
        tree, checksums = skeleton["tree"], skeleton.get("crc32", {})
    except (ValueError, TypeError, KeyError):
        raise CheckpointError(f"pydl.load: {where} is corrupted: its pydl metadata is not valid JSON") from None
    for key, crc in checksums.items():
        arr = arrays.get(key)
        if arr is None:
            raise CheckpointError(f"pydl.load: {where} is corrupted: tensor {key!r} is missing")
        got = zlib.crc32(arr.reshape(-1).view(np.uint8)) if arr.size else 0
        if got != crc:
            raise CheckpointError(f"pydl.load: {where} is corrupted: tensor {key!r} fails its CRC-32 check")
    return _decode(tree, arrays, where)
