"""The fast CPU layers: convolution as matrix products, and pooling.

``backend`` is "numpy" (stride tricks, no compiled code) or "cython" (the
kernels in cs_utils._fastops). Both use the GEMM formulation of CS231n:

    forward:  out  = W @ cols + b          W = w.reshape(F, C*HH*WW)
    backward: dW   = dout @ cols.T         db = sum of dout
              dcols = W.T @ dout           dx = col2im(dcols)

The "numpy" backend is the textbook version: it builds the column matrix of the
whole batch at once (C*HH*WW times N*Ho*Wo numbers, 150 MB for a 64-image VGG
layer) and runs three big matrix products.

The "cython" backend computes the same products differently:

* Chunks. The batch is cut into chunks of about CHUNK_BYTES of receptive fields
  (a few small images, one image, or a band of output rows of a large image).
  A chunk's fields are built, multiplied and, in the backward pass, added back
  into dx while they are still in the core's cache; the whole-batch matrix is
  never built. The backward pass rebuilds each chunk's fields from the copy of x
  in the cache rather than keeping them: one more cheap pass, and a layer needs
  little memory beyond its input and output.
* Rows, channels last. The forward pass keeps x as (N, H, W, C). A receptive
  field is then fh runs of fw*C consecutive numbers, copied with memcpy, and a
  chunk's fields are the rows of a (pixels, fh*fw*C) matrix ("im2row", the
  transpose of im2col's columns, with the filter axes ordered (i, j, c)). In
  this orientation OpenBLAS runs all three products about 20 % faster than with
  im2col's columns; the (pixels, F) forward product is transposed into
  out (N, F, Ho, Wo) with the bias added on the way.
* Threads. Chunks are handed out to one thread per core (``_Parallel``); each
  runs single-threaded BLAS on its own chunks. Both cores are busy also while
  fields are built and summed, and no thread waits for another in the middle of
  a matrix product, which matters on a machine that other jobs share.
* Memory used again. The output, the cache's copy of x and dx come from
  ``_recycler``: a layer called again with the same shapes reuses the memory of
  arrays nobody holds any more, instead of waiting for the kernel to hand out
  (and zero) fresh pages, about a tenth of a VGG-sized forward pass.
* Reproducible. The filter gradient is summed per group of chunks and the groups
  in a fixed order, so the result does not depend on which thread did what.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator

import numpy as np

from cs_utils import _backend
from cs_utils.im2col import col2im, im2col
from cs_utils.shapes import conv_output_shape, pool_output_shape

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# A chunk's receptive fields are kept near this size (bytes): large enough that the
# matrix products run at full speed, small enough to stay in a core's L2 cache.
CHUNK_BYTES = 1 << 20
# Below this many multiply-adds a layer runs on the calling thread alone: waking
# the other threads would cost more than it saves.
PARALLEL_MIN_MACS = 8_000_000
# OpenBLAS starts its thread team for products of more multiply-adds than this
# (65536 * GEMM_MULTITHREAD_THRESHOLD); below it, holding BLAS to one thread is moot.
BLAS_TEAM_MIN_MACS = 1 << 18
# The filter gradient is summed in this many groups of chunks (threads take whole
# groups; more groups balance the load better, fewer keep less memory).
REDUCTION_GROUPS = 16
# Pooling: input elements per chunk, and the fewest that are worth a second thread.
POOL_CHUNK_ELEMENTS = 1 << 16
POOL_PARALLEL_MIN_ELEMENTS = 1 << 18
# Outputs and saved copies of at least RECYCLE_MIN_BYTES reuse the memory of earlier
# ones that nobody holds any more (_Recycler); at most RECYCLE_MAX_BYTES are kept.
RECYCLE_MIN_BYTES = 1 << 20
RECYCLE_MAX_BYTES = 256 << 20


# ----------------------------------------------------------------------------
# Threads: chunks of a batch shared between the calling thread and a small pool
# ----------------------------------------------------------------------------


class _Parallel:
    """Runs ``work(chunks)`` on up to one thread per core, all pulling from one iterator.

    The threads are plain Python threads; the work they do (the Cython kernels and
    NumPy's matrix products) releases the GIL, so they run at the same time. While
    they run, the BLAS library is limited to one thread (threadpoolctl), so that
    two threads do not each start a full BLAS thread team. No OpenMP is involved, so
    nothing competes with the OpenMP runtime that torch brings. The number of threads is
    at most the number of cores this process may use and at most the number of BLAS
    threads allowed when the call starts (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1
    or threadpoolctl's ``threadpool_limits(1)`` therefore keep every layer on one
    thread). Without threadpoolctl everything runs on the calling thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._blas: Any = None
        self._blas_checked = False

    def _blas_controller(self):
        if not self._blas_checked:
            self._blas_checked = True
            try:
                from threadpoolctl import ThreadpoolController

                ctl = ThreadpoolController().select(user_api="blas")
                self._blas = ctl if ctl.lib_controllers else None
            except Exception:  # threadpoolctl missing or unable to see the BLAS
                self._blas = None
        return self._blas

    def threads(self) -> int:
        """How many threads a layer may use now."""
        env = os.environ.get("CS_UTILS_NUM_THREADS")
        if env:
            try:
                return max(1, int(env))
            except ValueError:
                pass
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        blas = self._blas_controller()
        if blas is None or cores <= 1:
            return 1
        allowed = max(lib.num_threads for lib in blas.lib_controllers)
        return max(1, min(cores, allowed))

    def _executor(self, workers: int) -> ThreadPoolExecutor:
        # A forked child inherits the executor object but not its threads: make a new one.
        if self._pool is None or self._pool_pid != os.getpid() or self._pool._max_workers < workers:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cs_utils")
            self._pool_pid = os.getpid()
        return self._pool

    def run(self, chunks: list, work: Callable[[Iterator], Any], worth_it: bool = True, blas: bool = False) -> list:
        """Call ``work(it)`` on several threads sharing one iterator ``it`` over ``chunks``.

        ``worth_it=False`` (a small job) keeps it on the calling thread. ``blas=True``
        says that ``work`` runs matrix products: BLAS is then held to one thread while
        it runs, also on the calling thread alone, as a chunk's product is too small
        for a BLAS thread team to pay off (and costs a lot when the machine is busy).
        Returns the list of what each call returned (one per thread used). If one
        call raises (a KeyboardInterrupt in a notebook, say), the others stop after
        their current chunk and the exception is raised here.
        """
        threads = min(self.threads(), len(chunks)) if worth_it else 1
        it = _SharedIterator(chunks)
        limit_blas = blas and self._blas_controller() is not None
        if threads <= 1 and not limit_blas:
            return [work(it)]

        def guarded():
            try:
                return work(it)
            except BaseException:
                it.stopped = True
                raise

        # The lock: two callers changing the BLAS limit at once could restore it wrongly.
        one_blas_thread = self._blas.limit(limits=1) if limit_blas else contextlib.nullcontext()
        with self._lock, one_blas_thread:
            if threads <= 1:
                return [work(it)]
            futures = [self._executor(threads - 1).submit(guarded) for _ in range(threads - 1)]
            try:
                mine = guarded()
            finally:
                wait(futures)  # even if ours raised: no thread may outlive the BLAS limit
            return [mine] + [f.result() for f in futures]

    def _after_fork(self) -> None:
        """In a forked child: no pool threads exist there, and the lock may have been held."""
        self._lock = threading.Lock()
        self._pool = None


class _SharedIterator:
    """An iterator that several threads may pull from, and that can be stopped."""

    def __init__(self, items: list) -> None:
        self._it = iter(items)  # a list iterator: next() on it is atomic under the GIL
        self.stopped = False

    def __iter__(self) -> "_SharedIterator":
        return self

    def __next__(self):
        if self.stopped:
            raise StopIteration
        return next(self._it)


_parallel = _Parallel()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_parallel._after_fork)


# ----------------------------------------------------------------------------
# Memory: large arrays used again once nothing refers to them
# ----------------------------------------------------------------------------


class _Recycler:
    """Hands out large arrays, reusing the memory of earlier ones that nobody holds any more.

    NumPy takes a large array from malloc, and glibc gives a freed large block back
    to the kernel. The next call of the same layer then waits while the kernel
    zeroes fresh pages for its output: about a tenth of a VGG-sized forward pass.
    A layer called again and again with the same shapes (a training loop, a
    benchmark) gets its arrays from here instead.

    The recycler keeps every block it hands out. An array it returns is a view of
    such a block, and so is every view of that array: a block is free again when
    no Python object refers to it but the recycler (its reference count says so),
    and only then is its memory handed out again. At most ``max_bytes`` are kept;
    free blocks handed out longest ago are let go first to make room, and an array that
    does not fit comes from np.empty as usual.
    """

    def __init__(self, max_bytes: int, min_bytes: int) -> None:
        if not hasattr(sys, "getrefcount"):  # a Python without reference counts (PyPy): never reuse
            max_bytes = 0
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self._blocks: list[np.ndarray] = []  # 1-D uint8, least recently handed out first
        self._lock = threading.Lock()
        self._free_refcount = 0
        if max_bytes > 0:
            self._blocks.append(np.empty(0, dtype=np.uint8))
            self._free_refcount = self._refcount(0)  # what a block only the recycler holds shows
            self._blocks.clear()

    def _refcount(self, i: int) -> int:
        return sys.getrefcount(self._blocks[i])

    def _is_free(self, i: int) -> bool:
        return self._refcount(i) <= self._free_refcount

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Like np.empty(shape, dtype): contents undefined, C order, nobody else's memory."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < self.min_bytes or nbytes > self.max_bytes:
            return np.empty(shape, dtype=dtype)
        with self._lock:
            for i in range(len(self._blocks)):
                if self._blocks[i].nbytes == nbytes and self._is_free(i):
                    block = self._blocks.pop(i)
                    break
            else:
                block = self._new_block(nbytes)
                if block is None:
                    return np.empty(shape, dtype=dtype)
            self._blocks.append(block)
            return block.view(dtype).reshape(shape)

    def _new_block(self, nbytes: int) -> np.ndarray | None:
        """A new block, after letting go of free blocks to make room; None if none can be made."""
        held = sum(block.nbytes for block in self._blocks)
        i = 0
        while held + nbytes > self.max_bytes and i < len(self._blocks):
            if self._is_free(i):
                held -= self._blocks.pop(i).nbytes
            else:
                i += 1
        return np.empty(nbytes, dtype=np.uint8) if held + nbytes <= self.max_bytes else None

    def release(self) -> int:
        """Let go of every free block; returns the number of bytes let go."""
        with self._lock:
            free = {i for i in range(len(self._blocks)) if self._is_free(i)}  # no other name may hold a block here
            released = sum(self._blocks[i].nbytes for i in free)
            self._blocks = [self._blocks[i] for i in range(len(self._blocks)) if i not in free]
            return released

    def held_bytes(self) -> int:
        """Bytes of all blocks kept, in use or free."""
        with self._lock:
            return sum(block.nbytes for block in self._blocks)


_recycler = _Recycler(RECYCLE_MAX_BYTES, RECYCLE_MIN_BYTES)


def _chunks(n: int, per_chunk: int) -> list[tuple[int, int]]:
    return [(n0, min(n0 + per_chunk, n)) for n0 in range(0, n, per_chunk)]


# ----------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------


def conv_forward(x, w, b, stride, pad, backend):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, Ho, Wo)."""
    if backend == "cython" and x.dtype in _KERNEL_DTYPES:
        return _conv_forward_chunked(x, w, b, stride, pad)
    if backend == "cython":  # float16 and other dtypes the kernels do not compile for
        backend = "numpy"
    N, F, Ho, Wo = conv_output_shape(x.shape, w.shape, stride, pad)
    HH, WW = w.shape[2:]
    cols = im2col(x, HH, WW, stride, pad, backend=backend)  # (C*HH*WW, N*Ho*Wo), a fresh array
    w_rows = w.reshape(F, -1).copy()  # a copy: changing w after the forward pass must not change the backward
    out = (w_rows @ cols + b[:, None]).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), ("cols", x.shape, w.shape, w_rows, cols, stride, pad, backend)


def conv_backward(dout, cache):
    if cache[0] == "chunked":
        return _conv_backward_chunked(dout, cache)
    _, x_shape, w_shape, w_rows, cols, stride, pad, backend = cache
    F = w_shape[0]
    dout_rows = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*Ho*Wo)
    db = dout.sum(axis=(0, 2, 3))
    dw = (dout_rows @ cols.T).reshape(w_shape)
    dcols = w_rows.T @ dout_rows
    dx = col2im(dcols, x_shape, w_shape[2], w_shape[3], stride, pad, backend=backend)
    return dx, dw, db


def _plan(n: int, ho: int, wo: int, k: int, itemsize: int) -> tuple[list[list[tuple]], int]:
    """Split a batch into chunks whose rows of receptive fields fill about CHUNK_BYTES.

    A chunk (n0, n1, ho0, ho1) is output rows ho0..ho1-1 of images n0..n1-1: either
    several whole images, or a band of rows of one large image. Returns the chunks
    grouped in blocks (a block never splits an image: one chunk of whole images, or
    all the bands of one image, in order) and the most rows a chunk has.
    """
    per_output_row = max(1, wo * k * itemsize)
    fit = max(1, CHUNK_BYTES // per_output_row)  # output rows that fit in a chunk
    if fit >= ho:
        nb = max(1, min(n, fit // ho))
        return [[(n0, min(n0 + nb, n), 0, ho)] for n0 in range(0, n, nb)], nb * ho * wo
    bands = -(-ho // fit)
    band = -(-ho // bands)  # even bands
    blocks = [[(i, i + 1, h0, min(h0 + band, ho)) for h0 in range(0, ho, band)] for i in range(n)]
    return blocks, band * wo


def _conv_forward_chunked(x, w, b, stride, pad):
    ops = _backend.fastops()
    N, F, Ho, Wo = conv_output_shape(x.shape, w.shape, stride, pad)
    _, C, H, W = x.shape
    HH, WW = w.shape[2:]
    K, P = C * HH * WW, Ho * Wo
    dtype = x.dtype
    # Filters in the order of a channels-last receptive field, (i, j, c); copies, so that
    # changing x or w after the forward pass cannot change the backward pass.
    w_k = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(F, K)
    w_kt = np.ascontiguousarray(w_k.T)  # (K, F)
    x_keep = _recycler.empty((N, H, W, C), dtype)  # channels-last copy of x
    out = _recycler.empty((N, F, Ho, Wo), dtype)
    out3 = out.reshape(N, F, P)
    blocks, most_rows = _plan(N, Ho, Wo, K, dtype.itemsize)
    chunks = [c for block in blocks for c in block]
    worth_it = N * F * K * P >= PARALLEL_MIN_MACS
    banded = len(blocks[0]) > 1
    if banded:  # bands of one image overlap in the input: make the whole copy first
        def convert(images):
            for n0, n1 in images:
                ops.to_channels_last(x, n0, n1, x_keep)

        _parallel.run([(i, i + 1) for i in range(N)], convert, worth_it)

    def work(chunks):
        rows_buf = np.empty(most_rows * K, dtype=dtype)
        prod_buf = np.empty(most_rows * F, dtype=dtype)
        for n0, n1, h0, h1 in chunks:
            mp = (h1 - h0) * Wo  # rows per image
            m = (n1 - n0) * mp
            if not banded:
                ops.to_channels_last(x, n0, n1, x_keep)
            rows = rows_buf[: m * K].reshape(m, K)
            ops.im2row(x_keep, n0, n1, h0, h1, HH, WW, stride, pad, rows)
            prod = prod_buf[: m * F].reshape(m, F)
            np.matmul(rows, w_kt, out=prod)  # (m, K) @ (K, F)
            ops.store_rows_out(prod, b, out3, n0, h0 * Wo, mp)

    _parallel.run(chunks, work, worth_it, blas=most_rows * F * K >= BLAS_TEAM_MIN_MACS)
    return out, ("chunked", x_keep, w_k, w.shape, stride, pad)


def _conv_backward_chunked(dout, cache):
    ops = _backend.fastops()
    _, x_keep, w_k, w_shape, stride, pad = cache
    N, H, W, C = x_keep.shape
    F, _, HH, WW = w_shape
    Ho, Wo = dout.shape[2:]
    K, P = C * HH * WW, Ho * Wo
    dtype = x_keep.dtype
    dout3 = np.ascontiguousarray(dout, dtype=dtype).reshape(N, F, P)
    dx = _recycler.empty((N, C, H, W), dtype)
    blocks, most_rows = _plan(N, Ho, Wo, K, dtype.itemsize)

    def work(groups):
        rows_buf = np.empty(most_rows * K, dtype=dtype)
        drows_buf = np.empty(most_rows * K, dtype=dtype)
        dout_buf = np.empty(F * most_rows, dtype=dtype)
        image_buf = np.empty(H * W * C, dtype=dtype)
        dw_part = np.empty((F, K), dtype=dtype)
        sums = []
        for g, group in groups:
            dw_sum = np.zeros((F, K), dtype=dtype)
            for n0, n1, h0, h1 in group:
                mp = (h1 - h0) * Wo
                m = (n1 - n0) * mp
                rows = rows_buf[: m * K].reshape(m, K)
                ops.im2row(x_keep, n0, n1, h0, h1, HH, WW, stride, pad, rows)
                if n1 - n0 == 1:
                    d = dout3[n0, :, h0 * Wo : h1 * Wo]  # (F, m), rows P apart
                else:
                    d = dout_buf[: F * m].reshape(F, m)
                    ops.gather_dout(dout3, n0, n1, d)
                np.matmul(d, rows, out=dw_part)  # (F, m) @ (m, K)
                ops.add_into(dw_sum, dw_part)
                drows = drows_buf[: m * K].reshape(m, K)
                np.matmul(d.T, w_k, out=drows)  # (m, F) @ (F, K)
                ops.row2im(drows, n0, n1, h0, h1, HH, WW, stride, pad, image_buf, dx)
            sums.append((g, dw_sum))
        return sums

    # The filter gradient is a sum over the batch. Each group of blocks is summed by one
    # thread, and the groups are added in a fixed order: the same numbers come out
    # whichever thread ran which group, and however many threads there were. A block
    # (and so a group) holds whole images: the bands of an image meet in one buffer.
    n_groups = min(len(blocks), REDUCTION_GROUPS)
    bounds = np.linspace(0, len(blocks), n_groups + 1).astype(int)
    groups = [(g, [c for block in blocks[bounds[g] : bounds[g + 1]] for c in block]) for g in range(n_groups)]
    per_thread = _parallel.run(groups, work, worth_it=N * F * K * P >= PARALLEL_MIN_MACS,
                               blas=most_rows * F * K >= BLAS_TEAM_MIN_MACS)
    group_sums = dict(pair for sums in per_thread for pair in sums)
    dw = group_sums[0]
    for g in range(1, n_groups):
        dw += group_sums[g]
    dw = np.ascontiguousarray(dw.reshape(F, HH, WW, C).transpose(0, 3, 1, 2))
    db = dout3.sum(axis=(0, 2))
    return dx, dw, db


# ----------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------


def _pool_columns(x, size, stride, backend):
    """Every window as a column: (size*size, N*C*Ho*Wo), channels treated as separate images."""
    N, C, H, W = x.shape
    return im2col(x.reshape(N * C, 1, H, W), size, size, stride, 0, backend=backend)


def _use_kernels(backend: str, x) -> bool:
    return backend == "cython" and x.dtype in _KERNEL_DTYPES


def _run_planes(n_planes: int, plane_elements: int, kernel: Callable[[int, int], None]) -> None:
    """Call ``kernel(p0, p1)`` over chunks of planes, on several threads for a large batch."""
    per_chunk = max(1, POOL_CHUNK_ELEMENTS // max(1, plane_elements))

    def work(chunks):
        for p0, p1 in chunks:
            kernel(p0, p1)

    _parallel.run(_chunks(n_planes, per_chunk), work, worth_it=n_planes * plane_elements >= POOL_PARALLEL_MIN_ELEMENTS)


def max_pool_forward(x, size, stride, backend):
    """x (N, C, H, W) -> out (N, C, Ho, Wo), remembering where each maximum was."""
    out_shape = pool_output_shape(x.shape, size, stride)
    N, C, H, W = x.shape
    if _use_kernels(backend, x) and H * W < 2**31:
        ops = _backend.fastops()
        out = np.empty(out_shape, dtype=x.dtype)
        argmax = np.empty(out_shape, dtype=np.intc)  # flat index within the plane
        x3, out3, arg3 = x.reshape(N * C, H, W), out.reshape(N * C, *out_shape[2:]), argmax.reshape(N * C, *out_shape[2:])
        _run_planes(N * C, H * W, lambda p0, p1: ops.max_pool_forward(x3, size, stride, out3, arg3, p0, p1))
        return out, ("planes", x.shape, size, stride, argmax)
    backend = "numpy" if backend == "cython" else backend
    cols = _pool_columns(x, size, stride, backend)
    argmax = np.argmax(cols, axis=0)  # first maximum in row-major window order
    out = cols[argmax, np.arange(cols.shape[1])].reshape(out_shape)
    return out, ("cols", x.shape, size, stride, argmax, backend)


def max_pool_backward(dout, cache):
    if cache[0] == "planes":
        _, x_shape, size, stride, argmax = cache
        ops = _backend.fastops()
        N, C, H, W = x_shape
        Ho, Wo = argmax.shape[2:]
        dx = np.empty(x_shape, dtype=dout.dtype)
        dout3 = np.ascontiguousarray(dout).reshape(N * C, Ho, Wo)
        dx3, arg3 = dx.reshape(N * C, H, W), argmax.reshape(N * C, Ho, Wo)
        if dout3.dtype in _KERNEL_DTYPES:
            _run_planes(N * C, H * W, lambda p0, p1: ops.max_pool_backward(dout3, arg3, dx3, p0, p1))
            return dx
        dx3[...] = 0  # a dtype the kernels do not compile for: scatter with NumPy
        np.add.at(dx3.reshape(N * C, H * W), (np.arange(N * C)[:, None], arg3.reshape(N * C, -1)), dout3.reshape(N * C, -1))
        return dx
    _, x_shape, size, stride, argmax, backend = cache
    N, C, H, W = x_shape
    dcols = np.zeros((size * size, dout.size), dtype=dout.dtype)
    dcols[argmax, np.arange(dout.size)] = dout.ravel()
    return col2im(dcols, (N * C, 1, H, W), size, size, stride, 0, backend=backend).reshape(x_shape)


def avg_pool_forward(x, size, stride, backend):
    """x (N, C, H, W) -> out (N, C, Ho, Wo), the mean of each window."""
    out_shape = pool_output_shape(x.shape, size, stride)
    N, C, H, W = x.shape
    if _use_kernels(backend, x):
        ops = _backend.fastops()
        out = np.empty(out_shape, dtype=x.dtype)
        x3, out3 = x.reshape(N * C, H, W), out.reshape(N * C, *out_shape[2:])
        _run_planes(N * C, H * W, lambda p0, p1: ops.avg_pool_forward(x3, size, stride, out3, p0, p1))
        return out, (x.shape, size, stride, backend)
    backend = "numpy" if backend == "cython" else backend
    out = _pool_columns(x, size, stride, backend).mean(axis=0).reshape(out_shape).astype(x.dtype, copy=False)
    return out, (x.shape, size, stride, backend)


def avg_pool_backward(dout, cache):
    x_shape, size, stride, backend = cache
    N, C, H, W = x_shape
    if _use_kernels(backend, dout):
        ops = _backend.fastops()
        Ho, Wo = dout.shape[2:]
        dx = np.empty(x_shape, dtype=dout.dtype)
        dout3, dx3 = np.ascontiguousarray(dout).reshape(N * C, Ho, Wo), dx.reshape(N * C, H, W)
        _run_planes(N * C, H * W, lambda p0, p1: ops.avg_pool_backward(dout3, size, stride, dx3, p0, p1))
        return dx
    backend = "numpy" if backend == "cython" else backend
    dcols = np.broadcast_to(dout.reshape(1, -1) / (size * size), (size * size, dout.size))
    dcols = np.ascontiguousarray(dcols, dtype=dout.dtype)
    return col2im(dcols, (N * C, 1, H, W), size, size, stride, 0, backend=backend).reshape(x_shape)
