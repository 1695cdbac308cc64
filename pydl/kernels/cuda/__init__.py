"""The CUDA backend (``pydl._C_cuda``): CuPy float32 / float64 arrays in and out.

Same signatures as :mod:`pydl.kernels.reference`, one module per kernel family (as
``csrc/cuda/<family>.cu``). Arrays are checked in Python (the compiled module takes raw
device pointers) and every kernel is launched on CuPy's current stream. The package
imports without CuPy or the CUDA build, so its ``OPS`` can be listed anywhere.
"""
from . import gemm as _gemm
from .gemm import gemm, gemm_backward
from . import norm as _norm
from .norm import (batch_norm_backward, batch_norm_forward, group_norm_backward, group_norm_forward,
                   layer_norm_backward, layer_norm_forward)
from . import softmax as _softmax
from .softmax import (cross_entropy_backward, cross_entropy_forward, log_softmax_backward, log_softmax_forward,
                      softmax_backward, softmax_forward, svm_loss_backward, svm_loss_forward)
from . import embedding as _embedding
from .embedding import embedding_backward, embedding_forward
from . import dropout as _dropout
from .dropout import dropout_backward, dropout_forward
from . import pool as _pool
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, adaptive_max_pool2d_backward,
                   adaptive_max_pool2d_forward, avg_pool2d_backward, avg_pool2d_forward,
                   fractional_max_pool2d_backward, fractional_max_pool2d_forward, max_pool2d_backward,
                   max_pool2d_forward, max_unpool2d_backward, max_unpool2d_forward)
from . import upsample as _upsample
from .upsample import (pixel_shuffle_backward, pixel_shuffle_forward, pixel_unshuffle_backward,
                       pixel_unshuffle_forward, upsample_bilinear2d_backward, upsample_bilinear2d_forward,
                       upsample_nearest2d_backward, upsample_nearest2d_forward)
from . import attention as _attention
from .attention import attention_backward, attention_forward
from . import boxes as _boxes
from .boxes import (batched_nms, box_iou, generalized_box_iou, nms, roi_align_backward, roi_align_forward,
                    roi_pool_backward, roi_pool_forward)
from . import rnn as _rnn
from .rnn import (gru_backward, gru_cell_backward, gru_cell_forward, gru_forward, lstm_backward, lstm_cell_backward,
                  lstm_cell_forward, lstm_forward)
from . import conv as _conv
from .conv import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward

_FAMILIES = (_gemm, _norm, _softmax, _embedding, _dropout, _pool, _upsample, _attention, _boxes, _rnn, _conv)
OPS = tuple(op for family in _FAMILIES for op in family.OPS)
