"""Small data sets for the lectures: all of them ship with installed packages.

Nothing here touches the network. The sources are

- scikit-learn's 8x8 handwritten digits (``sklearn.datasets.load_digits``,
  1797 images bundled inside the scikit-learn wheel);
- matplotlib's sample photograph ``grace_hopper.jpg``
  (``matplotlib.cbook.get_sample_data``);
- synthetic images (bars, crosses, squares) drawn here from a seed;
- the aeroplane-sensor readings of the 1-D convolution lecture and a longer
  noisy track made from a seed.

Images come back as floating-point arrays in ``[0, 1]``; image batches use the
course layout ``(N, C, H, W)``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "Split",
    "digits",
    "photo",
    "resize",
    "SHAPE_CLASSES",
    "synthetic_shapes",
    "sensor_readings",
    "noisy_track",
]


class Split(NamedTuple):
    """A train/test split of an image classification set.

    ``X_train`` (N_train, C, H, W) float32, ``y_train`` (N_train,) int64,
    ``X_test`` (N_test, C, H, W) float32, ``y_test`` (N_test,) int64.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1; got {name}={value}")
    return value


def _check_size(name: str, size) -> tuple[int, int] | None:
    """Normalise ``size`` (None, an int, or (height, width)) to a pair of positive ints."""
    if size is None:
        return None
    pair = (size, size) if np.isscalar(size) else tuple(size)
    if len(pair) != 2 or any(int(s) != s or int(s) < 1 for s in pair):
        raise ValueError(f"{name} must be a positive int or a (height, width) pair of positive ints; got {name}={size!r}")
    return int(pair[0]), int(pair[1])


def resize(image: np.ndarray, size) -> np.ndarray:
    """Resize one image with bilinear interpolation (Pillow, which matplotlib depends on).

    Args:
        image: (H, W) or (H, W, C) float array.
        size: an int (square output) or a (height, width) pair.

    Returns:
        (height, width) or (height, width, C) float64 array.
    """
    from PIL import Image

    hw = _check_size("size", size)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C); got shape {image.shape}")
    if image.ndim == 3:
        return np.stack([resize(image[..., c], hw) for c in range(image.shape[2])], axis=-1)
    out = Image.fromarray(image.astype(np.float32)).resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float64)


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a split that keeps every class's share; the same seed gives the same split."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return train_idx, test_idx


def digits(
    test_fraction: float = 0.25,
    seed: int = 0,
    size: int | None = None,
    classes: Sequence[int] | None = None,
) -> Split:
    """scikit-learn's handwritten digits as (N, 1, 8, 8) images in [0, 1], split in train/test.

    Args:
        test_fraction: share of each class held out for testing.
        seed: the split is a function of the seed only (stratified by class).
        size: if given, resize every image to ``size`` x ``size`` (bilinear), e.g.
            32 for LeNet-5's input.
        classes: keep only these digits (labels are left as they are, e.g. 5..9).

    Returns:
        ``Split(X_train, y_train, X_test, y_test)``; X float32 (N, 1, H, W), y int64 (N,).
    """
    from sklearn.datasets import load_digits

    test_fraction = _check_fraction("test_fraction", test_fraction)
    bunch = load_digits()
    X = bunch.images.astype(np.float64) / 16.0  # pixel values are counts 0..16
    y = bunch.target.astype(np.int64)
    if classes is not None:
        wanted = np.asarray(list(classes), dtype=np.int64)
        unknown = np.setdiff1d(wanted, np.arange(10))
        if unknown.size:
            raise ValueError(f"classes must be digits 0..9; got unknown labels {unknown.tolist()}")
        keep = np.isin(y, wanted)
        X, y = X[keep], y[keep]
    if size is not None:
        hw = _check_size("size", size)
        X = np.stack([resize(img, hw) for img in X])
    X = np.clip(X, 0.0, 1.0)[:, None].astype(np.float32)
    train_idx, test_idx = _stratified_split(y, test_fraction, seed)
    return Split(X[train_idx], y[train_idx], X[test_idx], y[test_idx])


def photo(gray: bool = True, size=None) -> np.ndarray:
    """The sample photograph of Grace Hopper that ships with matplotlib, in [0, 1].

    Args:
        gray: return luminance (H, W) (ITU-R 601 weights) instead of RGB (H, W, 3).
        size: optional int or (height, width) to resize to (bilinear).

    Returns:
        float64 array (H, W) or (H, W, 3); the original is 600 x 512 pixels.
    """
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        rgb = np.asarray(Image.open(fh).convert("RGB"), dtype=np.float64) / 255.0
    img = rgb @ np.array([0.299, 0.587, 0.114]) if gray else rgb
    if size is not None:
        img = np.clip(resize(img, size), 0.0, 1.0)
    return img


SHAPE_CLASSES = ("horizontal bar", "vertical bar", "cross", "square")


def _draw_shape(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size) image of shape ``kind`` (index into SHAPE_CLASSES), one-pixel margin."""
    img = np.zeros((size, size))
    t = int(rng.integers(1, max(1, size // 8) + 1))  # stroke thickness
    if kind in (0, 1):  # a bar; the vertical one is the transpose of a horizontal one
        length = int(rng.integers(size // 2, size - 1))
        c0 = int(rng.integers(1, size - length))
        r0 = int(rng.integers(1, size - t))
        img[r0:r0 + t, c0:c0 + length] = 1.0
        return img.T.copy() if kind == 1 else img
    if kind == 2:  # a plus sign: two strokes through one centre
        half = int(rng.integers(size // 4, size // 2 - 1))
        rc = int(rng.integers(1 + half, size - 1 - half))
        cc = int(rng.integers(1 + half, size - 1 - half))
        img[rc - t // 2:rc - t // 2 + t, cc - half:cc + half + 1] = 1.0
        img[rc - half:rc + half + 1, cc - t // 2:cc - t // 2 + t] = 1.0
        return img
    side = int(rng.integers(size // 3, size - 2))  # the outline of a square
    r0 = int(rng.integers(1, size - side))
    c0 = int(rng.integers(1, size - side))
    img[r0:r0 + side, c0:c0 + side] = 1.0
    img[r0 + t:r0 + side - t, c0 + t:c0 + side - t] = 0.0
    return img


def synthetic_shapes(n: int = 200, size: int = 16, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images of bars, crosses and square outlines with their labels, drawn from a seed.

    Labels index ``SHAPE_CLASSES``: 0 horizontal bar, 1 vertical bar, 2 cross, 3 square.
    Classes are balanced (label ``i % 4`` before shuffling).

    Args:
        n: number of images (>= 1).
        size: height and width in pixels (>= 8).
        noise: standard deviation of Gaussian noise added before clipping to [0, 1].
        seed: same seed, same images.

    Returns:
        X float32 (n, 1, size, size) in [0, 1], y int64 (n,).
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive int; got n={n!r}")
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an int >= 8 so that every shape fits; got size={size!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got noise={noise}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    X = np.stack([_draw_shape(int(k), int(size), rng) for k in y])
    X = np.clip(X + noise * rng.standard_normal(X.shape), 0.0, 1.0)
    return X[:, None].astype(np.float32), y


def sensor_readings() -> tuple[np.ndarray, np.ndarray]:
    """The aeroplane-position example of the 1-D convolution lecture (seed 004).

    Returns:
        x: (12,) positions x_0 .. x_11 read by a noisy laser sensor.
        w: (7,) weights listed oldest first, i.e. ``w[0] = w_{-6}`` ... ``w[6] = w_0``:
            the most recent reading gets the largest weight.
    """
    x = np.array([1.00, 1.10, 1.20, 1.40, 1.70, 1.80, 1.90, 2.10, 2.20, 2.40, 2.50, 2.70])
    w = np.array([0.01, 0.01, 0.02, 0.02, 0.04, 0.40, 0.50])
    return x, w


def noisy_track(n: int = 120, noise: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth flight path and noisy readings of it, for plotting a moving average.

    Returns:
        truth (n,) and readings (n,) = truth + Gaussian noise with standard deviation ``noise``.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an int >= 2; got n={n!r}")
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, int(n))
    truth = 1.0 + 2.0 * t + 0.3 * np.sin(2 * np.pi * 1.5 * t)
    return truth, truth + noise * rng.standard_normal(int(n))

