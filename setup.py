"""Package layout and the one C extension; all metadata lives in pyproject.toml.

The top-level kernels/ folder is installed under the import name `ifrl_kernels` (never
`kernels`, which is Hugging Face's package and is probed by transformers). The public
kernel API is `ifrl.kernels`, a thin re-export of it.

`ifrl.constraints._plan` is the verifier's per-check bookkeeping in C. It is optional:
where it cannot be compiled (no C compiler or Python headers), the install goes on and
the engine runs the same bookkeeping in Python (`ifrl.constraints.native.ENABLED` says
which one runs).
"""
from setuptools import Extension, find_packages, setup

setup(
    packages=find_packages(include=["ifrl", "ifrl.*"]) + ["ifrl_kernels"],
    package_dir={"ifrl_kernels": "kernels"},
    ext_modules=[Extension("ifrl.constraints._plan", ["ifrl/constraints/_plan.c"], optional=True)],
)
