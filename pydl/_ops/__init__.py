"""The tensor operations, one module per family, each with its autograd nodes.

pointwise (arithmetic, comparisons, unary maths), reduction (sum, mean, max, var, ...),
shape (reshape, transpose, cat, ...), indexing (``__getitem__``, gather, where),
linalg (matmul through the gemm kernel), creation (zeros, randn, ...); ``methods``
attaches them to :class:`pydl.Tensor`.
"""
