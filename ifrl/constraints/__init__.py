"""Hard-constraint verification with exact IFEval semantics.

Public API::

    verify_batch(responses, instruction_id_lists, kwargs_lists, mode="strict") -> list[list[bool]]
    is_soft(id) / route(id) -> "rule" | "soft"     # soft ids go to the reward model
    known_ids(), validate_kwargs(id, kwargs, where), conflicts(id), describe(id, kwargs),
    sample_kwargs(id, rng), get_spec(id)
    report.summarize(...), io.load_jsonl(...)

Constraint ids live in ``families/`` (one module per family, registered by decorator).
"""

from ifrl.constraints.engine import loose_variants, verify_batch, verify_reference
from ifrl.constraints.registry import (
    ConstraintSpec,
    KwargSpec,
    conflicts,
    describe,
    get_spec,
    ifeval_ids,
    is_soft,
    known_ids,
    registry,
    route,
    sample_kwargs,
    validate_kwargs,
)

__all__ = [
    "ConstraintSpec", "KwargSpec", "conflicts", "describe", "get_spec", "ifeval_ids", "is_soft", "known_ids",
    "loose_variants", "registry", "route", "sample_kwargs", "validate_kwargs", "verify_batch", "verify_reference",
]
