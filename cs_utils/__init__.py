"""cs_utils: the helper package of the CNN course.

Modules (see DESIGN.md for the contract):

- ``shapes``     output-size arithmetic with errors that teach
- ``functional`` reference layers: conv, pooling, ReLU, affine, softmax loss
- ``im2col``     im2col/col2im (Cython when built, NumPy otherwise)
- ``gradcheck``  relative error and numerical gradients
- ``kernels``    the classic 3x3 image kernels
- ``arch``       layer specs, ``summarize`` and the named case-study networks
- ``models``     torch builders of the same networks

Submodules are imported on demand so that ``import cs_utils`` stays cheap
(torch is imported only when a torch path is used).
"""

__version__ = "0.1.0"
