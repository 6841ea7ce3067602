"""The classic 3x3 image kernels (the table of the filters lecture).

Each is a float64 array of shape (3, 3), applied by cross-correlation
(``cs_utils.functional.conv2d``). Every kernel here is unchanged by the 180-degree
rotation that true convolution applies, so convolution and cross-correlation
give the same image with them (lecture 02 checks this; a Sobel kernel is not).
"""

import numpy as np

CLASSIC_KERNELS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64),
    "edge (diagonal)": np.array([[1, 0, -1], [0, 0, 0], [-1, 0, 1]], dtype=np.float64),
    "edge (4-neighbour Laplacian)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
    "edge (8-neighbour Laplacian)": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=np.float64),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
    "box blur": np.ones((3, 3), dtype=np.float64) / 9,
    "Gaussian blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 16,
}


def kernel(name: str) -> np.ndarray:
    """A copy of one classic kernel by name (see ``CLASSIC_KERNELS``)."""
    try:
        return CLASSIC_KERNELS[name].copy()
    except KeyError:
        raise KeyError(f"unknown kernel {name!r}; choose one of {sorted(CLASSIC_KERNELS)}") from None
