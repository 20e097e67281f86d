"""Package layout only; all metadata lives in pyproject.toml.

The top-level kernels/ folder is installed under the import name `ifrl_kernels` (never
`kernels`, which is Hugging Face's package and is probed by transformers). The public
kernel API is `ifrl.kernels`, a thin re-export of it.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["ifrl", "ifrl.*"]) + ["ifrl_kernels"],
    package_dir={"ifrl_kernels": "kernels"},
)
