"""The engine's C helpers (``_plan.c``: grouping checks by id, validating kwargs, cutting
verdicts into rows), where the install could compile them.

``setup.py`` builds ``_plan`` as an optional extension: without a C compiler the install
still succeeds and the engine runs the Python definitions of the same steps, which give
the same results (slower: about 6% of a 541-row IFEval batch). ``ENABLED`` says which
runs; the tests switch it off to check the Python path.
"""

try:
    from ifrl.constraints import _plan as plan
except ImportError:  # pragma: no cover - a build without a C compiler
    plan = None

ENABLED = plan is not None
