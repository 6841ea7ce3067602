"""cs_utils: the helper package of the CNN course.

Modules (see DESIGN.md for the contract):

- ``shapes``     output-size arithmetic with errors that teach
- ``functional`` reference layers: conv, pooling, ReLU, affine, softmax loss
- ``im2col``     im2col/col2im (Cython when built, NumPy otherwise)
- ``gradcheck``  relative error and numerical gradients

Submodules are imported on demand so that ``import cs_utils`` stays cheap
(torch is imported only when a torch path is used).
"""

__version__ = "0.1.0"
