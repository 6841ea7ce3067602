# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled kernels behind cs_utils.im2col and the "cython" backend.

Typed memoryviews only (float32 or float64 via the fused type ``floating``),
no Python objects in the inner loops, and the GIL released while they run, so
that cs_utils._fast can run them on several threads at once. The callers in
Python allocate the outputs and check every shape: these kernels trust their
arguments.

Layout of the column matrix (the contract of cs_utils.im2col):
    row    = c*fh*fw + i*fw + j            (channel, filter row, filter column)
    column = n*Ho*Wo + ho*Wo + wo          (image, output row, output column)

The convolution of the "cython" backend itself (cs_utils._fast) uses the rows
of channels-last receptive fields instead (im2row / row2im below), a chunk of
the batch at a time.
"""

from cython cimport floating
from libc.string cimport memcpy, memset


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0 and any sign of a."""
    if a <= 0:
        return -((-a) // b)
    return (a + b - 1) // b


cdef inline void _valid_range(Py_ssize_t j, Py_ssize_t W, Py_ssize_t Wo, Py_ssize_t stride,
                              Py_ssize_t pad, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """The output columns wo whose input column wo*stride + j - pad lies inside [0, W)."""
    cdef Py_ssize_t a = _ceil_div(pad - j, stride)
    cdef Py_ssize_t z = _ceil_div(W + pad - j, stride)
    if a < 0:
        a = 0
    if z > Wo:
        z = Wo
    if z < a:
        z = a
    lo[0] = a
    hi[0] = z


cdef void _im2col_chunk(const floating[:, :, :, ::1] x, Py_ssize_t n0, Py_ssize_t n1,
                        Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t stride, Py_ssize_t pad,
                        floating[:, ::1] cols) noexcept nogil:
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = (H + 2 * pad - fh) // stride + 1
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t P = Ho * Wo
    cdef Py_ssize_t n, c, i, j, ho, wo, hi, lo, up, off
    cdef const floating* plane
    cdef const floating* src
    cdef floating* dst
    if n1 <= n0 or P == 0:
        return
    for n in range(n0, n1):
        for c in range(C):
            plane = &x[n, c, 0, 0]
            for j in range(fw):
                _valid_range(j, W, Wo, stride, pad, &lo, &up)
                off = j - pad
                for i in range(fh):
                    dst = &cols[(c * fh + i) * fw + j, (n - n0) * P]
                    for ho in range(Ho):
                        hi = ho * stride + i - pad
                        if hi < 0 or hi >= H or up == lo:
                            memset(dst, 0, Wo * sizeof(floating))
                        else:
                            src = plane + hi * W
                            if lo > 0:
                                memset(dst, 0, lo * sizeof(floating))
                            if stride == 1:
                                memcpy(dst + lo, src + lo + off, (up - lo) * sizeof(floating))
                            else:
                                for wo in range(lo, up):
                                    dst[wo] = src[wo * stride + off]
                            if up < Wo:
                                memset(dst + up, 0, (Wo - up) * sizeof(floating))
                        dst += Wo


cdef void _col2im_chunk(const floating[:, ::1] cols, Py_ssize_t n0, Py_ssize_t n1,
                        Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t stride, Py_ssize_t pad,
                        floating[:, :, :, ::1] dx, bint zero) noexcept nogil:
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t Ho = (H + 2 * pad - fh) // stride + 1
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t P = Ho * Wo
    cdef Py_ssize_t n, c, i, j, ho, wo, hi, lo, up, off
    cdef floating* plane
    cdef floating* dst
    cdef const floating* src
    if n1 <= n0:
        return
    for n in range(n0, n1):
        for c in range(C):
            plane = &dx[n, c, 0, 0]
            if zero:
                memset(plane, 0, H * W * sizeof(floating))
            if P == 0:
                continue
            for j in range(fw):
                _valid_range(j, W, Wo, stride, pad, &lo, &up)
                if up == lo:
                    continue
                off = j - pad
                for i in range(fh):
                    src = &cols[(c * fh + i) * fw + j, (n - n0) * P]
                    for ho in range(Ho):
                        hi = ho * stride + i - pad
                        if 0 <= hi < H:
                            dst = plane + hi * W + off
                            if stride == 1:
                                for wo in range(lo, up):
                                    dst[wo] += src[wo]
                            else:
                                for wo in range(lo, up):
                                    dst[wo * stride] += src[wo]
                        src += Wo


# ---------------------------------------------------------------------------
# Public im2col / col2im (cs_utils.im2col): the whole batch at once
# ---------------------------------------------------------------------------


def im2col(const floating[:, :, :, ::1] x, Py_ssize_t fh, Py_ssize_t fw,
           Py_ssize_t stride, Py_ssize_t pad, floating[:, ::1] cols):
    """Fill ``cols`` (C*fh*fw, N*Ho*Wo) with the receptive fields of ``x`` (N, C, H, W)."""
    with nogil:
        _im2col_chunk(x, 0, x.shape[0], fh, fw, stride, pad, cols)


def col2im(const floating[:, ::1] cols, Py_ssize_t fh, Py_ssize_t fw,
           Py_ssize_t stride, Py_ssize_t pad, floating[:, :, :, ::1] dx):
    """Add every column of ``cols`` back into ``dx`` (N, C, H, W), which must start at zero.

    Where receptive fields overlap (stride < filter size) their contributions add up.
    """
    with nogil:
        _col2im_chunk(cols, 0, dx.shape[0], fh, fw, stride, pad, dx, False)


# ---------------------------------------------------------------------------
# Helpers of the convolution's backward pass (cs_utils._fast)
# ---------------------------------------------------------------------------


def gather_dout(const floating[:, :, ::1] dout, Py_ssize_t n0, Py_ssize_t n1, floating[:, ::1] rows):
    """rows[f, k*P + p] = dout[n0 + k, f, p]: the upstream gradient of a chunk as (F, nb*P)."""
    cdef Py_ssize_t F = dout.shape[1], P = dout.shape[2]
    cdef Py_ssize_t k, f
    if P == 0:
        return
    with nogil:
        for k in range(n1 - n0):
            for f in range(F):
                memcpy(&rows[f, k * P], &dout[n0 + k, f, 0], P * sizeof(floating))


def add_into(floating[:, ::1] acc, const floating[:, ::1] term):
    """acc += term, without the GIL (the per-thread sum of the filter gradients)."""
    cdef Py_ssize_t r, q
    with nogil:
        for r in range(acc.shape[0]):
            for q in range(acc.shape[1]):
                acc[r, q] += term[r, q]


# ---------------------------------------------------------------------------
# The convolution proper (cs_utils._fast) works on channels-last copies of the
# images: x[n] (C, H, W) becomes xh[n] (H, W, C). A receptive field is then
# fh runs of fw*C consecutive numbers, so "im2row" -- one row per output pixel,
#     rows[n*Ho*Wo + ho*Wo + wo, (i*fw + j)*C + c] = xpad[n, c, ho*stride + i, wo*stride + j]
# -- is fh memcpy calls per output pixel, and its adjoint fh vector additions.
# Rows of receptive fields (P, K) are also the layout in which BLAS runs the
# three matrix products of a convolution fastest (about 20 % faster than the
# (K, P) columns of im2col on an AVX-512 core).
# ---------------------------------------------------------------------------


cdef inline void _transpose(const floating* src, floating* dst, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """dst (cols, rows) = src (rows, cols).T.

    Eight rows of the wider matrix at a time, 64 of the other dimension at a time:
    image planes are often 4 KiB apart, and touching more than eight such rows at
    once would evict lines of the same L1 cache set before they are used up.
    """
    cdef Py_ssize_t r0, c0, r, c, r1, c1
    cdef const floating* s
    cdef floating* d
    if cols >= rows:  # read 8 long source rows side by side, write short runs of 8
        for c0 in range(0, cols, 64):
            c1 = c0 + 64 if c0 + 64 < cols else cols
            r0 = 0
            while r0 + 8 <= rows:
                for c in range(c0, c1):
                    s = src + r0 * cols + c
                    d = dst + c * rows + r0
                    d[0] = s[0]
                    d[1] = s[cols]
                    d[2] = s[2 * cols]
                    d[3] = s[3 * cols]
                    d[4] = s[4 * cols]
                    d[5] = s[5 * cols]
                    d[6] = s[6 * cols]
                    d[7] = s[7 * cols]
                r0 += 8
            for c in range(c0, c1):
                for r in range(r0, rows):
                    dst[c * rows + r] = src[r * cols + c]
    else:  # write 8 long destination rows side by side, read short runs of 8
        for r0 in range(0, rows, 64):
            r1 = r0 + 64 if r0 + 64 < rows else rows
            c0 = 0
            while c0 + 8 <= cols:
                for r in range(r0, r1):
                    s = src + r * cols + c0
                    d = dst + c0 * rows + r
                    d[0] = s[0]
                    d[rows] = s[1]
                    d[2 * rows] = s[2]
                    d[3 * rows] = s[3]
                    d[4 * rows] = s[4]
                    d[5 * rows] = s[5]
                    d[6 * rows] = s[6]
                    d[7 * rows] = s[7]
                c0 += 8
            for r in range(r0, r1):
                for c in range(c0, cols):
                    dst[c * rows + r] = src[r * cols + c]


def to_channels_last(const floating[:, :, :, ::1] x, Py_ssize_t n0, Py_ssize_t n1, floating[:, :, :, ::1] xh):
    """xh[n] (H, W, C) = x[n] (C, H, W) for n0 <= n < n1 (xh has the full batch)."""
    cdef Py_ssize_t C = x.shape[1], HW = x.shape[2] * x.shape[3]
    cdef Py_ssize_t n
    if HW == 0 or C == 0:
        return
    with nogil:
        for n in range(n0, n1):
            _transpose(&x[n, 0, 0, 0], &xh[n, 0, 0, 0], C, HW)


def im2row(const floating[:, :, :, ::1] xh, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t ho0, Py_ssize_t ho1,
           Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t stride, Py_ssize_t pad, floating[:, ::1] rows):
    """Receptive fields of output rows ho0..ho1-1 of images n0..n1-1, from ``xh`` (N, H, W, C).

    ``rows`` gets ((n1-n0)*(ho1-ho0)*Wo, fh*fw*C) numbers, row ((n-n0)*(ho1-ho0) + ho-ho0)*Wo + wo,
    with zeros where a field reaches into the padding.
    """
    cdef Py_ssize_t H = xh.shape[1], W = xh.shape[2], C = xh.shape[3]
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t n, ho, wo, i, hi, w0, jlo, jhi, run = fw * C
    cdef const floating* img
    cdef floating* dst
    if ho1 <= ho0 or Wo <= 0 or run == 0 or n1 <= n0:
        return
    with nogil:
        dst = &rows[0, 0]
        for n in range(n0, n1):
            img = &xh[n, 0, 0, 0]
            for ho in range(ho0, ho1):
                for wo in range(Wo):
                    w0 = wo * stride - pad
                    jlo = -w0 if w0 < 0 else 0
                    jhi = W - w0 if W - w0 < fw else fw
                    if jhi < jlo:
                        jhi = jlo
                    for i in range(fh):
                        hi = ho * stride + i - pad
                        if hi < 0 or hi >= H or jhi == jlo:
                            memset(dst, 0, run * sizeof(floating))
                        else:
                            if jlo > 0:
                                memset(dst, 0, jlo * C * sizeof(floating))
                            memcpy(dst + jlo * C, img + (hi * W + w0 + jlo) * C, (jhi - jlo) * C * sizeof(floating))
                            if jhi < fw:
                                memset(dst + jhi * C, 0, (fw - jhi) * C * sizeof(floating))
                        dst += run


def row2im(const floating[:, ::1] rows, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t ho0, Py_ssize_t ho1,
           Py_ssize_t fh, Py_ssize_t fw, Py_ssize_t stride, Py_ssize_t pad,
           floating[::1] work, floating[:, :, :, ::1] dx):
    """The adjoint of im2row (same arguments), written to images n0..n1-1 of ``dx`` (N, C, H, W).

    An image is summed channels-last in ``work`` (at least H*W*C numbers), where
    overlapping receptive fields add up: ``work`` is zeroed when the band starts at
    output row 0, and transposed into ``dx[n]`` when the band ends at the last output
    row. So the bands of one image must come in order, through one ``work`` buffer,
    and ``dx`` may come from np.empty. With several images, bands are whole images.
    """
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t Ho = (H + 2 * pad - fh) // stride + 1
    cdef Py_ssize_t Wo = (W + 2 * pad - fw) // stride + 1
    cdef Py_ssize_t n, ho, wo, i, hi, w0, jlo, jhi, q, m, run = fw * C
    cdef const floating* src
    cdef floating* acc
    cdef floating* img = &work[0]
    with nogil:
        src = &rows[0, 0]
        for n in range(n0, n1):
            if ho0 == 0:
                memset(img, 0, H * W * C * sizeof(floating))
            if Wo > 0 and run > 0:
                for ho in range(ho0, ho1):
                    for wo in range(Wo):
                        w0 = wo * stride - pad
                        jlo = -w0 if w0 < 0 else 0
                        jhi = W - w0 if W - w0 < fw else fw
                        for i in range(fh):
                            hi = ho * stride + i - pad
                            if 0 <= hi < H and jhi > jlo:
                                acc = img + (hi * W + w0 + jlo) * C
                                m = (jhi - jlo) * C
                                for q in range(m):
                                    acc[q] += src[jlo * C + q]
                            src += run
            if ho1 >= Ho and H * W > 0 and C > 0:
                _transpose(img, &dx[n, 0, 0, 0], H * W, C)


def store_rows_out(const floating[:, ::1] prod, const floating[::1] b, floating[:, :, ::1] out,
                   Py_ssize_t n0, Py_ssize_t p0, Py_ssize_t mp):
    """out[n0 + k, f, p0 + p] = prod[k*mp + p, f] + b[f] for p < mp: the (nb*mp, F) product of
    a chunk (nb images, or a band of mp output pixels of one image), transposed into
    out (N, F, P) with the bias added on the way."""
    cdef Py_ssize_t F = out.shape[1], P = out.shape[2]
    cdef Py_ssize_t nb = prod.shape[0] // mp if mp else 0
    cdef Py_ssize_t k, q0, q1, q, f0, f
    cdef const floating* s
    cdef floating* d
    if mp == 0 or F == 0:
        return
    with nogil:
        for k in range(nb):
            # eight output channels (rows of out[n]) at a time, read as runs of 8 of prod
            for q0 in range(0, mp, 64):
                q1 = q0 + 64 if q0 + 64 < mp else mp
                f0 = 0
                while f0 + 8 <= F:
                    for q in range(q0, q1):
                        s = &prod[k * mp + q, f0]
                        d = &out[n0 + k, f0, p0 + q]
                        d[0] = s[0] + b[f0]
                        d[P] = s[1] + b[f0 + 1]
                        d[2 * P] = s[2] + b[f0 + 2]
                        d[3 * P] = s[3] + b[f0 + 3]
                        d[4 * P] = s[4] + b[f0 + 4]
                        d[5 * P] = s[5] + b[f0 + 5]
                        d[6 * P] = s[6] + b[f0 + 6]
                        d[7 * P] = s[7] + b[f0 + 7]
                    f0 += 8
                for f in range(f0, F):
                    for q in range(q0, q1):
                        out[n0 + k, f, p0 + q] = prod[k * mp + q, f] + b[f]


# ---------------------------------------------------------------------------
# Pooling. x is seen as (N*C, H, W) planes; each call handles planes p0..p1-1
# so that several threads can share a batch.
# ---------------------------------------------------------------------------


def max_pool_forward(const floating[:, :, ::1] x, Py_ssize_t size, Py_ssize_t stride,
                     floating[:, :, ::1] out, int[:, :, ::1] argmax, Py_ssize_t p0, Py_ssize_t p1):
    """Max over each window; ``argmax`` gets the flat index hi*W + wi (within the plane) of the winner.

    Ties go to the first maximum in row-major order (strict ``>``), as torch does;
    a NaN wins its window, as in torch.
    """
    cdef Py_ssize_t W = x.shape[2], Ho = out.shape[1], Wo = out.shape[2]
    cdef Py_ssize_t p, ho, wo, i, j, h0, w0, best_idx, idx
    cdef floating best, v
    cdef const floating* plane
    cdef const floating* row
    with nogil:
        for p in range(p0, p1):
            plane = &x[p, 0, 0]
            for ho in range(Ho):
                h0 = ho * stride
                for wo in range(Wo):
                    w0 = wo * stride
                    idx = h0 * W + w0
                    best = plane[idx]
                    best_idx = idx
                    if best == best:  # not NaN: look for a larger value (or a NaN)
                        for i in range(size):
                            row = plane + (h0 + i) * W + w0
                            for j in range(size):
                                v = row[j]
                                if not (v <= best):  # v > best, or v is NaN
                                    best = v
                                    best_idx = (h0 + i) * W + w0 + j
                                    if v != v:
                                        break
                            if best != best:
                                break
                    out[p, ho, wo] = best
                    argmax[p, ho, wo] = <int>best_idx


def max_pool_backward(const floating[:, :, ::1] dout, const int[:, :, ::1] argmax,
                      floating[:, :, ::1] dx, Py_ssize_t p0, Py_ssize_t p1):
    """Zero planes p0..p1-1 of ``dx``, then route each upstream gradient to its window's argmax
    (overlapping windows add up)."""
    cdef Py_ssize_t H = dx.shape[1], W = dx.shape[2], Ho = dout.shape[1], Wo = dout.shape[2]
    cdef Py_ssize_t p, ho, wo
    cdef floating* plane
    with nogil:
        for p in range(p0, p1):
            plane = &dx[p, 0, 0]
            memset(plane, 0, H * W * sizeof(floating))
            for ho in range(Ho):
                for wo in range(Wo):
                    plane[argmax[p, ho, wo]] += dout[p, ho, wo]


def avg_pool_forward(const floating[:, :, ::1] x, Py_ssize_t size, Py_ssize_t stride,
                     floating[:, :, ::1] out, Py_ssize_t p0, Py_ssize_t p1):
    """Mean over each ``size`` x ``size`` window, planes p0..p1-1."""
    cdef Py_ssize_t W = x.shape[2], Ho = out.shape[1], Wo = out.shape[2]
    cdef Py_ssize_t p, ho, wo, i, j, h0, w0
    cdef double acc, scale = 1.0 / (size * size)
    cdef const floating* row
    with nogil:
        for p in range(p0, p1):
            for ho in range(Ho):
                h0 = ho * stride
                for wo in range(Wo):
                    w0 = wo * stride
                    acc = 0
                    for i in range(size):
                        row = &x[p, h0 + i, w0]
                        for j in range(size):
                            acc = acc + row[j]
                    out[p, ho, wo] = <floating>(acc * scale)


def avg_pool_backward(const floating[:, :, ::1] dout, Py_ssize_t size, Py_ssize_t stride,
                      floating[:, :, ::1] dx, Py_ssize_t p0, Py_ssize_t p1):
    """Zero planes p0..p1-1 of ``dx``, then spread each upstream gradient evenly over its
    window (overlaps add up)."""
    cdef Py_ssize_t H = dx.shape[1], W = dx.shape[2], Ho = dout.shape[1], Wo = dout.shape[2]
    cdef Py_ssize_t p, ho, wo, i, j, h0, w0
    cdef floating g
    cdef floating* row
    cdef double scale = 1.0 / (size * size)
    with nogil:
        for p in range(p0, p1):
            memset(&dx[p, 0, 0], 0, H * W * sizeof(floating))
            for ho in range(Ho):
                h0 = ho * stride
                for wo in range(Wo):
                    w0 = wo * stride
                    g = <floating>(dout[p, ho, wo] * scale)
                    for i in range(size):
                        row = &dx[p, h0 + i, w0]
                        for j in range(size):
                            row[j] += g
