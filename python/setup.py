"""Builds the optional C module gradflow.refine._fused (the refiner's statistics in one pass each,
gradflow/refine/fused.py), with OpenMP so that its kernels run on torch's own OpenMP threads
(_fused.c says how). Without a C compiler with OpenMP the package installs without it and runs
the same statistics as torch operations. Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gradflow.refine._fused", ["gradflow/refine/_fused.c"],
                             extra_compile_args=["-O3", "-Wall", "-Wextra", "-fopenmp"],
                             extra_link_args=["-fopenmp"], optional=True)])
