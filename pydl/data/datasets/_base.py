"""The array-backed image data set every pydl data set builds on."""
import numpy as np

from ...tensor import Tensor
from ..dataset import Dataset, _check_index

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """Images held as one array, (N, C, H, W), and integer labels (N,).

    ``dataset[i]`` is ``(image, label)``: the image a float32 array (C, H, W) with values in
    [0, 1] (what torchvision's ``ToTensor`` would make of the file's pixels; stored uint8
    images are converted sample by sample), the label an ``int``; then ``transform`` and
    ``target_transform`` if given. A batch fetched through ``__getitems__`` runs a batched
    transform (every pydl transform is) once on the whole batch.
    """

    classes = None

    def __init__(self, images, targets, transform=None, target_transform=None, scale=None):
        images = np.asarray(images)
        targets = np.asarray(targets, dtype=np.int64)
        if images.ndim != 4:
            raise ValueError(f"{type(self).__name__}: images must have shape (N, C, H, W), got {images.shape}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"{type(self).__name__}: {images.shape[0]} images but targets of shape {targets.shape}")
        self.data = images
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform
        self._scale = (1.0 / 255.0 if images.dtype == np.uint8 else 1.0) if scale is None else scale

    def __len__(self):
        return self.data.shape[0]

    def _images(self, idx):
        x = self.data[idx].astype(np.float32)
        if self._scale != 1.0:
            x *= np.float32(self._scale)
        return x

    def __getitem__(self, index):
        i = _check_index(index, len(self), type(self).__name__)
        image = self._images(i)
        if self.transform is not None:
            image = self.transform(image)
        target = int(self.targets[i])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"{type(self).__name__}: indices out of range for a data set of {n} samples")
        images = self._images(idx)
        if self.transform is not None and getattr(self.transform, "batched", False):
            images = self.transform(images)
            rows = [Tensor._make(r) for r in images.data] if isinstance(images, Tensor) else list(images)
        elif self.transform is not None:
            rows = [self.transform(im) for im in images]
        else:
            rows = list(images)
        targets = self.targets[idx].tolist()
        if self.target_transform is not None:
            targets = [self.target_transform(t) for t in targets]
        return list(zip(rows, targets))

    def arrays(self):
        """All images (N, C, H, W) float32 in [0, 1] and labels (N,) int64, untransformed."""
        return self._images(slice(None)), self.targets.copy()

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Image shape: {tuple(self.data.shape[1:])}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)
