"""Builds the package's two optional C modules:

- gradflow.refine._fused, the refiner's statistics in one pass each (gradflow/refine/fused.py), with
  OpenMP so that its kernels run on torch's own OpenMP threads (_fused.c says how);
- gradflow._text, the step records' float32 measurements as shortest text (gradflow/_json.py).

Without a C compiler (with OpenMP, for the first) the package installs without them and runs the
same statistics as torch operations and the same text search in Python. Everything else about the
package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gradflow.refine._fused", ["gradflow/refine/_fused.c"],
                             extra_compile_args=["-O3", "-Wall", "-Wextra", "-fopenmp"],
                             extra_link_args=["-fopenmp"], optional=True),
                   Extension("gradflow._text", ["gradflow/_text.c"], extra_compile_args=["-O2", "-Wall", "-Wextra"],
                             optional=True)])
