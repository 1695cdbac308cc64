"""The C++ backend (``pydl._C``): NumPy float32 / float64 arrays in and out.

Every function has the signature of its reference twin in :mod:`pydl.kernels.reference`.
Arguments are checked in the binding (clear ``TypeError``/``ValueError`` naming the op and
the argument); the GIL is released while a kernel runs.
"""
import numpy as np

from .. import _C
from . import reference
from ._gemm_grad import gemm_backward_with


gemm = _C.gemm

# softmax family (csrc/cpu/softmax*.cpp). The fused losses compute the gradient in the
# forward pass; their cache holds it and backward hands it out, scaled by grad_loss.
softmax_forward = _C.softmax_forward
softmax_backward = _C.softmax_backward
log_softmax_forward = _C.log_softmax_forward
log_softmax_backward = _C.log_softmax_backward
cross_entropy_forward = _C.cross_entropy_forward
cross_entropy_backward = _C.cross_entropy_backward
svm_loss_forward = _C.svm_loss_forward
svm_loss_backward = _C.svm_loss_backward

# conv family (csrc/cpu/conv*.cpp): im2col + gemm, one image tile at a time.
conv2d_forward = _C.conv2d_forward
conv2d_backward = _C.conv2d_backward
conv_transpose2d_forward = _C.conv_transpose2d_forward
conv_transpose2d_backward = _C.conv_transpose2d_backward

# pooling (csrc/cpu/pool.cpp), normalisation (norm*.cpp), up-sampling (upsample.cpp) and
# dropout (dropout.cpp); fractional max pooling takes the caller's random samples.
max_pool2d_forward = _C.max_pool2d_forward
max_pool2d_backward = _C.max_pool2d_backward
max_unpool2d_forward = _C.max_unpool2d_forward
max_unpool2d_backward = _C.max_unpool2d_backward
avg_pool2d_forward = _C.avg_pool2d_forward
avg_pool2d_backward = _C.avg_pool2d_backward
adaptive_avg_pool2d_forward = _C.adaptive_avg_pool2d_forward
adaptive_avg_pool2d_backward = _C.adaptive_avg_pool2d_backward
adaptive_max_pool2d_forward = _C.adaptive_max_pool2d_forward
adaptive_max_pool2d_backward = _C.adaptive_max_pool2d_backward
fractional_max_pool2d_forward = _C.fractional_max_pool2d_forward
fractional_max_pool2d_backward = _C.fractional_max_pool2d_backward
batch_norm_forward = _C.batch_norm_forward
batch_norm_backward = _C.batch_norm_backward
layer_norm_forward = _C.layer_norm_forward
layer_norm_backward = _C.layer_norm_backward
group_norm_forward = _C.group_norm_forward
group_norm_backward = _C.group_norm_backward
upsample_nearest2d_forward = _C.upsample_nearest2d_forward
upsample_nearest2d_backward = _C.upsample_nearest2d_backward
upsample_bilinear2d_forward = _C.upsample_bilinear2d_forward
upsample_bilinear2d_backward = _C.upsample_bilinear2d_backward
pixel_shuffle_forward = _C.pixel_shuffle_forward
pixel_shuffle_backward = _C.pixel_shuffle_backward
pixel_unshuffle_forward = _C.pixel_unshuffle_forward
pixel_unshuffle_backward = _C.pixel_unshuffle_backward
dropout_forward = _C.dropout_forward
dropout_backward = _C.dropout_backward

# pointwise pieces of a training step (csrc/cpu/pointwise.cpp): relu, the in-place add
# of gradient accumulation, the fused SGD update of one parameter.
relu_forward = _C.relu_forward
relu_backward = _C.relu_backward
add_ = _C.add_
sgd_step_ = _C.sgd_step_

# attention (csrc/cpu/attention*.cpp): fused, tiled, online softmax; O(L + S) memory per head.
attention_forward = _C.attention_forward
attention_backward = _C.attention_backward

# rnn (csrc/cpu/rnn*.cpp): the time loop in C++; a cell is the one-step case. The caches
# are opaque tuples for the backward of the same backend. embedding (embedding.cpp).
lstm_cell_forward = _C.lstm_cell_forward
lstm_cell_backward = _C.lstm_cell_backward
gru_cell_forward = _C.gru_cell_forward
gru_cell_backward = _C.gru_cell_backward
lstm_forward = _C.lstm_forward
lstm_backward = _C.lstm_backward
gru_forward = _C.gru_forward
gru_backward = _C.gru_backward
embedding_forward = _C.embedding_forward
embedding_backward = _C.embedding_backward


def gemm_backward(grad_out, a, b, *, trans_a=False, trans_b=False, alpha=1.0):
    """Gradients ``(grad_a, grad_b)`` of ``gemm(a, b, trans_a=..., trans_b=..., alpha=...)``."""
    return gemm_backward_with(gemm, grad_out, a, b, trans_a, trans_b, alpha)


# boxes (csrc/cpu/boxes.cpp): IoU, GIoU, NMS (64-box bitmask blocks), RoI Align / pool.
# box_area and box_convert are a few NumPy element-wise products: no C++ needed, the
# dtype of the boxes is kept.
box_iou = _C.box_iou
generalized_box_iou = _C.generalized_box_iou
nms = _C.nms
batched_nms = _C.batched_nms
roi_align_forward = _C.roi_align_forward
roi_align_backward = _C.roi_align_backward
roi_pool_forward = _C.roi_pool_forward
roi_pool_backward = _C.roi_pool_backward


def box_area(boxes):
    """``(x2 - x1) * (y2 - y1)``: (N, 4) -> (N,), in the boxes' dtype."""
    b = np.asarray(boxes)
    return reference.box_area(b).astype(b.dtype if b.dtype.kind == "f" else np.float64)


def box_convert(boxes, in_fmt, out_fmt):
    """Converts (N, 4) boxes between "xyxy", "xywh" and "cxcywh", in the boxes' dtype."""
    b = np.asarray(boxes)
    return reference.box_convert(b, in_fmt, out_fmt).astype(b.dtype if b.dtype.kind == "f" else np.float64)


# What this backend implements, in the reference's order (the registry reads it).
OPS = tuple(op for op in reference.OPS if op in globals())
