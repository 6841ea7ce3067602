"""cs_utils.data: shapes, value ranges, determinism, and agreement with the packages the data ships in."""

import numpy as np
import pytest

from cs_utils import data


def _rows(X, y):
    """Each (image, label) as hashable bytes, for comparing data sets as multisets."""
    return sorted(X[i].tobytes() + bytes([int(y[i])]) for i in range(len(y)))


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_types_and_range():
    s = data.digits()
    assert s.X_train.shape[1:] == (1, 8, 8) and s.X_test.shape[1:] == (1, 8, 8)
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert len(s.X_train) + len(s.X_test) == 1797
    assert s.X_train.min() >= 0.0 and s.X_train.max() <= 1.0
    assert len(s.y_train) == len(s.X_train) and len(s.y_test) == len(s.X_test)


def test_digits_is_sklearn_data_scaled_by_16():
    from sklearn.datasets import load_digits

    b = load_digits()
    s = data.digits()
    X = np.concatenate([s.X_train, s.X_test])
    y = np.concatenate([s.y_train, s.y_test])
    expected = (b.images / 16.0).astype(np.float32)[:, None]
    assert _rows(X, y) == _rows(expected, b.target)


def test_digits_split_is_deterministic_and_seeded():
    a, b = data.digits(seed=3), data.digits(seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = data.digits(seed=4)
    assert not np.array_equal(a.y_test, c.y_test)


def test_digits_split_is_stratified():
    s = data.digits(test_fraction=0.2)
    for label in range(10):
        n_train = np.sum(s.y_train == label)
        n_test = np.sum(s.y_test == label)
        assert abs(n_test / (n_train + n_test) - 0.2) < 0.01


def test_digits_resize_and_class_filter():
    s = data.digits(size=32, classes=[5, 6, 7])
    assert s.X_train.shape[1:] == (1, 32, 32)
    assert set(np.unique(s.y_train)) == {5, 6, 7} and set(np.unique(s.y_test)) == {5, 6, 7}
    assert s.X_train.min() >= 0.0 and s.X_train.max() <= 1.0
    # upsampling keeps the picture: block means of the 32x32 image track the 8x8 original
    small = data.digits(classes=[5, 6, 7])
    big = s.X_train.reshape(len(s.X_train), 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.corrcoef(big.ravel(), small.X_train[:, 0].ravel())[0, 1] > 0.95


@pytest.mark.parametrize("kwargs, word", [({"test_fraction": 0.0}, "test_fraction"),
                                          ({"test_fraction": 1.5}, "test_fraction"),
                                          ({"classes": [3, 11]}, "classes"),
                                          ({"size": 0}, "size")])
def test_digits_bad_arguments_name_the_parameter(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data.digits(**kwargs)


# ----------------------------------------------------------------------------- photo


def test_photo_gray_and_rgb():
    from matplotlib import cbook
    from PIL import Image

    gray, rgb = data.photo(), data.photo(gray=False)
    assert gray.shape == (600, 512) and rgb.shape == (600, 512, 3)
    assert 0.0 <= gray.min() and gray.max() <= 1.0
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        pil_gray = np.asarray(Image.open(fh).convert("L"), dtype=float) / 255.0  # Pillow's own luminance
    assert np.max(np.abs(gray - pil_gray)) <= 1.0 / 255 + 1e-9


def test_photo_resize():
    small = data.photo(size=(100, 80))
    assert small.shape == (100, 80)
    assert abs(small.mean() - data.photo().mean()) < 0.02
    assert data.photo(gray=False, size=50).shape == (50, 50, 3)


def test_resize_constant_image_stays_constant_and_bad_size_raises():
    out = data.resize(np.full((10, 12), 0.3), (5, 7))
    assert out.shape == (5, 7) and np.allclose(out, 0.3)
    with pytest.raises(ValueError, match="size"):
        data.resize(np.zeros((4, 4)), (3, -1))
    with pytest.raises(ValueError, match="image"):
        data.resize(np.zeros(4), 3)


# ----------------------------------------------------------------------------- synthetic shapes


def test_shapes_shapes_balance_and_determinism():
    X, y = data.synthetic_shapes(n=40, size=16, seed=1)
    assert X.shape == (40, 1, 16, 16) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y, minlength=4).tolist() == [10, 10, 10, 10]
    X2, y2 = data.synthetic_shapes(n=40, size=16, seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = data.synthetic_shapes(n=40, size=16, seed=2)
    assert not np.array_equal(X, X3)


def test_shapes_look_like_their_labels():
    X, y = data.synthetic_shapes(n=80, size=16, noise=0.0, seed=0)
    assert set(np.unique(X)) <= {0.0, 1.0}
    for img, label in zip(X[:, 0], y):
        rows, cols = np.nonzero(img)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        if label == 0:    # horizontal bar: wide and thin
            assert width >= 8 and height <= 2
        elif label == 1:  # vertical bar
            assert height >= 8 and width <= 2
        elif label == 2:  # cross: a full row and a full column of the bounding box are on
            box = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert box.all(axis=1).any() and box.all(axis=0).any() and not box.all()
        else:             # square outline: the border of the bounding box is on, the centre off
            box = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()
            assert height == width and box[height // 2, width // 2] == 0


@pytest.mark.parametrize("kwargs, word", [({"n": 0}, "n"), ({"size": 5}, "size"), ({"noise": -1}, "noise")])
def test_shapes_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data.synthetic_shapes(**kwargs)


# ----------------------------------------------------------------------------- signals


def test_sensor_readings_match_the_seed():
    x, w = data.sensor_readings()
    assert x.shape == (12,) and w.shape == (7,)
    assert np.isclose(w.sum(), 1.0) and w[-1] == 0.5 and w[-2] == 0.4
    assert np.all(np.diff(x) > 0)  # the aeroplane moves forward


def test_noisy_track_is_seeded_and_noisy():
    truth, readings = data.noisy_track(n=500, noise=0.2, seed=5)
    truth2, readings2 = data.noisy_track(n=500, noise=0.2, seed=5)
    np.testing.assert_array_equal(readings, readings2)
    assert abs(np.std(readings - truth) - 0.2) < 0.03
    with pytest.raises(ValueError, match="n"):
        data.noisy_track(n=1)
