"""The ``ifrl`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them. A module that is not part of this build
yet still gets a ``--help`` page and exits with code 3 ("not available yet") when run,
so nothing pretends to work.
"""

from __future__ import annotations

import argparse
import importlib
import sys

NOT_AVAILABLE = 3

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ifrl.train", "run GRPO/PPO training from a YAML config (also: torchrun -m ifrl.train)"),
    "verify": ("ifrl.constraints.cli", "check responses against IFEval-style hard constraints"),
    "eval": ("ifrl.eval.cli", "generate + verify on IFEval / IFBench / a file; report scores"),
    "data": ("ifrl.data.cli", "build multi-constraint datasets and curricula"),
    "rm": ("ifrl.reward.rm_cli", "pseudo-label and train the soft-constraint reward model"),
    "export": ("ifrl.export", "write a training checkpoint as a Hugging Face folder"),
    "bench": ("ifrl.bench", "run the benchmark scripts in benchmarks/"),
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only "this feature is not in the build" is soft; a missing dependency inside the
        # module is a real error and must surface.
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from ifrl import __version__

    parser = argparse.ArgumentParser(
        prog="ifrl",
        description="ifrl: self-supervised RL for instruction following "
        "(rule verifiers + soft-constraint reward model + GRPO/PPO on FSDP2).",
    )
    parser.add_argument("--version", action="version", version=f"ifrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = _load(module_name)
        if module is None:
            p = sub.add_parser(name, help=f"{help_text} [not available yet]",
                               description=f"{help_text}. Not available yet in this build.")
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(_run=_not_available(name))
        else:
            p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().split("\n\n")[0])
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _not_available(name: str):
    def run(args) -> int:
        print(f"ifrl {name}: not available yet in this build.", file=sys.stderr)
        return NOT_AVAILABLE

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if argv is None and len(sys.argv) == 1 else 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``ifrl`` program: ``main()``, then exit through ``ifrl.dist.leave`` where a subcommand
    started a process group (``ifrl train`` under torchrun)."""
    code = main()
    dist = sys.modules.get("ifrl.dist")  # not imported: no group, and no torch import just to exit
    if dist is None:
        sys.exit(code)
    dist.leave(code)


if __name__ == "__main__":
    entry()
