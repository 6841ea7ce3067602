"""Build the optional Cython extension cs_utils._fastops.

Everything else about the package lives in pyproject.toml. If the extension
cannot be compiled (no C compiler), the package still installs and
cs_utils.im2col falls back to NumPy (HAVE_CYTHON is False).
"""
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the extension, but let the install go on without it."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython missing, ...
            if os.environ.get("CS_UTILS_REQUIRE_CYTHON"):
                raise
            print(f"WARNING: cs_utils._fastops not built ({exc}); the NumPy fallback will be used.")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            if os.environ.get("CS_UTILS_REQUIRE_CYTHON"):
                raise
            print(f"WARNING: {ext.name} not built ({exc}); the NumPy fallback will be used.")


def extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    ext = Extension(
        "cs_utils._fastops",
        ["cs_utils/_fastops.pyx"],
        depends=["cs_utils/_transpose.h"],
        include_dirs=["cs_utils"],
        extra_compile_args=["-O3"],
    )
    return cythonize(
        [ext],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
