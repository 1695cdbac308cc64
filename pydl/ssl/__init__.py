"""pydl.ssl: self-supervised learning (lectures 9-10).

- pretext tasks as transforms that return their own labels (:mod:`~pydl.ssl.pretext`):
  rotation, relative patch position, jigsaw, inpainting, colourisation (RGB <-> Lab);
- contrastive and self-distillation losses (:mod:`~pydl.ssl.losses`): NT-Xent (SimCLR),
  InfoNCE (CPC), MoCo's queue loss, DINO, a CLIP-style symmetric loss;
- MoCo's machinery (:mod:`~pydl.ssl.moco`): the key queue and the momentum update;
- the linear probe (:mod:`~pydl.ssl.probe`) that judges learnt features.
"""
from .losses import DINOLoss, clip_loss, dino_loss, info_nce, moco_loss, nt_xent
from .moco import KeyQueue, momentum_update
from .pretext import (Jigsaw, Rotation, colorization_pair, inpainting, jigsaw, lab_to_rgb, permutation_set,
                      relative_patch, rgb_to_lab, rotate, rotation_batch, simclr_augment, unjigsaw)
from .probe import extract_features, linear_probe

__all__ = ["DINOLoss", "Jigsaw", "KeyQueue", "Rotation", "clip_loss", "colorization_pair", "dino_loss",
           "extract_features", "info_nce", "inpainting", "jigsaw", "lab_to_rgb", "linear_probe", "moco_loss",
           "momentum_update", "nt_xent", "permutation_set", "relative_patch", "rgb_to_lab", "rotate", "rotation_batch",
           "simclr_augment", "unjigsaw"]
