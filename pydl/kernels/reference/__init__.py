"""The NumPy reference kernels: the textbook version of every operation, in float64.

Never optimised: this is the specification the C++ and CUDA kernels are tested against.
Each function takes any array-like input, computes in float64 and returns float64.
"""
from .conv import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward
from .gemm import gemm, gemm_backward
from .losses import cross_entropy_backward, cross_entropy_forward, svm_loss_backward, svm_loss_forward
from .softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward
from .dropout import dropout_backward, dropout_forward
from .pointwise import add_, relu_backward, relu_forward, sgd_step_
from .norm import (batch_norm_backward, batch_norm_forward, group_norm_backward, group_norm_forward,
                   layer_norm_backward, layer_norm_forward)
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
                   adaptive_max_pool2d_forward, avg_pool2d_backward, avg_pool2d_forward,
                   fractional_max_pool2d_backward, fractional_max_pool2d_forward, max_pool2d_backward,
                   max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward)
from .attention import attention_backward, attention_forward
from .embedding import embedding_backward, embedding_forward
from .rnn import (gru_backward, gru_cell_backward, gru_cell_forward, gru_forward, lstm_backward, lstm_cell_backward,
                  lstm_cell_forward, lstm_forward)
from .upsample import (pixel_shuffle_backward, pixel_shuffle_forward, pixel_unshuffle_backward,
                       pixel_unshuffle_forward, upsample_bilinear2d_backward, upsample_bilinear2d_forward,
                       upsample_nearest2d_backward, upsample_nearest2d_forward)

OPS = ("gemm", "gemm_backward",
       "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
       "cross_entropy_forward", "cross_entropy_backward", "svm_loss_forward", "svm_loss_backward",
       "conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward",
       "max_pool2d_forward", "max_pool2d_backward", "max_unpool2d_forward", "max_unpool2d_backward",
       "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward",
       "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_forward", "adaptive_max_pool2d_backward",
       "fractional_max_pool2d_forward", "fractional_max_pool2d_backward", "batch_norm_forward",
       "batch_norm_backward", "layer_norm_forward", "layer_norm_backward", "group_norm_forward",
       "group_norm_backward", "upsample_nearest2d_forward", "upsample_nearest2d_backward",
       "upsample_bilinear2d_forward", "upsample_bilinear2d_backward", "pixel_shuffle_forward",
       "pixel_shuffle_backward", "pixel_unshuffle_forward", "pixel_unshuffle_backward", "dropout_forward",
       "dropout_backward", "relu_forward", "relu_backward", "add_", "sgd_step_",
       "attention_forward", "attention_backward", "lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward",
       "gru_cell_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "embedding_forward",
       "embedding_backward")

__all__ = list(OPS)

from .boxes import (batched_nms, box_area, box_convert, box_iou, generalized_box_iou, nms, roi_align_backward,
                    roi_align_forward, roi_pool_backward, roi_pool_forward)

OPS = OPS + ("box_area", "box_convert", "box_iou", "generalized_box_iou", "nms", "batched_nms",
             "roi_align_forward", "roi_align_backward", "roi_pool_forward", "roi_pool_backward")
__all__ = list(OPS)
