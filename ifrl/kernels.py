"""Public kernel API: re-exports the top-level ``kernels/`` folder (installed as ``ifrl_kernels``)."""

from ifrl_kernels import *  # noqa: F401,F403
from ifrl_kernels import __all__ as __all__  # noqa: F401
