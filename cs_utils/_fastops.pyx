# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels behind cs_utils.im2col and the "cython" backend.

Typed memoryviews only (float32 or float64 via the fused type ``floating``),
no Python objects in the inner loops, and the GIL released while they run.
The callers in Python allocate the outputs and check every shape: these
kernels trust their arguments.

Layout of the column matrix (the contract of cs_utils.im2col):
    row    = c*fh*fw + i*fw + j            (channel, filter row, filter column)
    column = n*Ho*Wo + ho*Wo + wo          (image, output row, output column)
"""

from cython cimport floating


def im2col(const floating[:, :, :, ::1] x, Py_ssize_t fh, Py_ssize_t fw,
           Py_ssize_t stride, Py_ssize_t pad, floating[:, ::1] cols):
    """Fill ``cols`` (C*fh*fw, N*Ho*Wo) with the receptive fields of ``x`` (N, C, H, W)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = (H + 2 * pad - fh) // stride + 1
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t n, c, i, j, ho, wo, hi, wi, row, col
    with nogil:
        for c in range(C):
            for i in range(fh):
                for j in range(fw):
                    row = (c * fh + i) * fw + j
                    for n in range(N):
                        for ho in range(Ho):
                            hi = ho * stride + i - pad
                            col = (n * Ho + ho) * Wo
                            if hi < 0 or hi >= H:
                                for wo in range(Wo):
                                    cols[row, col + wo] = 0
                                continue
                            for wo in range(Wo):
                                wi = wo * stride + j - pad
                                if 0 <= wi < W:
                                    cols[row, col + wo] = x[n, c, hi, wi]
                                else:
                                    cols[row, col + wo] = 0


def col2im(const floating[:, ::1] cols, Py_ssize_t fh, Py_ssize_t fw,
           Py_ssize_t stride, Py_ssize_t pad, floating[:, :, :, ::1] dx):
    """Add every column of ``cols`` back into ``dx`` (N, C, H, W), which must start at zero.

    Where receptive fields overlap (stride < filter size) their contributions add up.
    """
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t Ho = (H + 2 * pad - fh) // stride + 1
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t n, c, i, j, ho, wo, hi, wi, row, col
    with nogil:
        for n in range(N):
            for c in range(C):
                for i in range(fh):
                    for j in range(fw):
                        row = (c * fh + i) * fw + j
                        for ho in range(Ho):
                            hi = ho * stride + i - pad
                            if hi < 0 or hi >= H:
                                continue
                            col = (n * Ho + ho) * Wo
                            for wo in range(Wo):
                                wi = wo * stride + j - pad
                                if 0 <= wi < W:
                                    dx[n, c, hi, wi] += cols[row, col + wo]


def max_pool_forward(const floating[:, :, :, ::1] x, Py_ssize_t size, Py_ssize_t stride,
                     floating[:, :, :, ::1] out, Py_ssize_t[:, :, :, ::1] argmax):
    """Max over each window; ``argmax`` gets the flat index hi*W + wi of the winner.

    Ties go to the first maximum in row-major order (strict ``>``), as torch does.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], W = x.shape[3]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t n, c, ho, wo, i, j, h0, w0, best_idx
    cdef floating best, v
    with nogil:
        for n in range(N):
            for c in range(C):
                for ho in range(Ho):
                    h0 = ho * stride
                    for wo in range(Wo):
                        w0 = wo * stride
                        best = x[n, c, h0, w0]
                        best_idx = h0 * W + w0
                        for i in range(size):
                            for j in range(size):
                                v = x[n, c, h0 + i, w0 + j]
                                if v > best or (v != v and best == best):  # a NaN wins, as in torch
                                    best = v
                                    best_idx = (h0 + i) * W + w0 + j
                        out[n, c, ho, wo] = best
                        argmax[n, c, ho, wo] = best_idx


def max_pool_backward(const floating[:, :, :, ::1] dout, const Py_ssize_t[:, :, :, ::1] argmax,
                      floating[:, :, :, ::1] dx):
    """Route each upstream gradient to its window's argmax; overlapping windows add up."""
    cdef Py_ssize_t N = dout.shape[0], C = dout.shape[1], Ho = dout.shape[2], Wo = dout.shape[3]
    cdef Py_ssize_t W = dx.shape[3]
    cdef Py_ssize_t n, c, ho, wo, idx
    with nogil:
        for n in range(N):
            for c in range(C):
                for ho in range(Ho):
                    for wo in range(Wo):
                        idx = argmax[n, c, ho, wo]
                        dx[n, c, idx // W, idx % W] += dout[n, c, ho, wo]


def avg_pool_forward(const floating[:, :, :, ::1] x, Py_ssize_t size, Py_ssize_t stride,
                     floating[:, :, :, ::1] out):
    """Mean over each ``size`` x ``size`` window."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t n, c, ho, wo, i, j, h0, w0
    cdef double acc, scale = 1.0 / (size * size)
    with nogil:
        for n in range(N):
            for c in range(C):
                for ho in range(Ho):
                    h0 = ho * stride
                    for wo in range(Wo):
                        w0 = wo * stride
                        acc = 0
                        for i in range(size):
                            for j in range(size):
                                acc = acc + x[n, c, h0 + i, w0 + j]
                        out[n, c, ho, wo] = <floating>(acc * scale)


def avg_pool_backward(const floating[:, :, :, ::1] dout, Py_ssize_t size, Py_ssize_t stride,
                      floating[:, :, :, ::1] dx):
    """Spread each upstream gradient evenly over its window; overlaps add up."""
    cdef Py_ssize_t N = dout.shape[0], C = dout.shape[1], Ho = dout.shape[2], Wo = dout.shape[3]
    cdef Py_ssize_t n, c, ho, wo, i, j, h0, w0
    cdef floating g
    cdef double scale = 1.0 / (size * size)
    with nogil:
        for n in range(N):
            for c in range(C):
                for ho in range(Ho):
                    h0 = ho * stride
                    for wo in range(Wo):
                        w0 = wo * stride
                        g = <floating>(dout[n, c, ho, wo] * scale)
                        for i in range(size):
                            for j in range(size):
                                dx[n, c, h0 + i, w0 + j] += g
