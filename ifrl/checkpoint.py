"""Sharded, atomic, verifiable training checkpoints.

Layout of ``<run>/checkpoints/step_N/`` (written as ``.tmp-step_N`` and renamed when complete)::

    *.distcp, .metadata     torch.distributed.checkpoint (DCP) shards: model + optimizer (+ critic)
    rank_<r>.pt             per-rank state: RNG states (python, numpy, torch, cuda), sampler
                            position, scheduler, step
    config.yaml             the resolved training config
    manifest.json           written last: step, world size, and sha256 + size of every file

Guarantees: a directory without ``manifest.json`` or with a ``.tmp-`` prefix is never loaded
(a crash mid-save leaves the previous checkpoint as the newest complete one); a file whose
checksum differs from the manifest is an error naming the file (never a silent fresh start).
The checkpoint directory must be on a file system all ranks see (shared across nodes).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from pathlib import Path

import torch

from ifrl.dist import barrier, broadcast_object

MANIFEST = "manifest.json"
_STEP_RE = re.compile(r"^step_(\d+)$")


class CheckpointError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rng_state() -> dict:
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def list_complete(ckpt_root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (manifest present, no temp prefix), oldest first."""
    if not ckpt_root.is_dir():
        return []
    out = []
    for d in ckpt_root.iterdir():
        m = _STEP_RE.match(d.name)
        if m and d.is_dir() and (d / MANIFEST).is_file():
            out.append((int(m.group(1)), d))
    return sorted(out)


def verify(ckpt: Path) -> dict:
    """Check every file against the manifest; return the manifest."""
    try:
        manifest = json.loads((ckpt / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{ckpt / MANIFEST}: unreadable ({e}). The checkpoint is damaged; "
                              f"delete {ckpt} to resume from the previous one.") from None
    for name, info in manifest["files"].items():
        p = ckpt / name
        if not p.is_file():
            raise CheckpointError(f"checkpoint {ckpt}: file {name} listed in the manifest is missing. "
                                  f"Delete {ckpt} to resume from the previous checkpoint.")
        if p.stat().st_size != info["size"] or _sha256(p) != info["sha256"]:
            raise CheckpointError(f"checkpoint {ckpt}: file {name} is corrupt (checksum mismatch). "
                                  f"Delete {ckpt} to resume from the previous checkpoint.")
    return manifest


def save(ckpt_root: Path, step: int, *, rank: int, world_size: int, app_state: dict, rank_state: dict,
         config_yaml: str, keep: int = 2) -> Path:
    """Collective: every rank calls it. ``app_state`` holds DCP-saveable state dicts."""
    import torch.distributed.checkpoint as dcp

    final = ckpt_root / f"step_{step}"
    tmp = ckpt_root / f".tmp-step_{step}"
    if rank == 0:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    barrier()
    dcp.save(app_state, checkpoint_id=str(tmp))
    torch.save(rank_state, tmp / f"rank_{rank}.pt")
    barrier()
    if rank == 0:
        (tmp / "config.yaml").write_text(config_yaml)
        files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"step": step, "world_size": world_size, "files": files}
        with (tmp / MANIFEST).open("w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in list_complete(ckpt_root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def find_resume(ckpt_root: Path, rank: int) -> Path | None:
    """Rank 0 picks and verifies the newest complete checkpoint; all ranks get its path."""
    chosen, err = None, None
    if rank == 0:
        done = list_complete(ckpt_root)
        if done:
            chosen = done[-1][1]
            try:
                verify(chosen)
            except CheckpointError as e:
                err = str(e)
    chosen, err = broadcast_object((None if chosen is None else str(chosen), err))
    if err:
        raise CheckpointError(err)
    return None if chosen is None else Path(chosen)


def load(ckpt: Path, *, rank: int, world_size: int, app_state: dict) -> dict:
    import torch.distributed.checkpoint as dcp

    manifest = json.loads((ckpt / MANIFEST).read_text())
    if manifest["world_size"] != world_size:
        raise CheckpointError(f"checkpoint {ckpt} was written by {manifest['world_size']} ranks, this run has "
                              f"{world_size}. Resume with the same number of processes (data position and RNG "
                              "streams are per rank).")
    dcp.load(app_state, checkpoint_id=str(ckpt))
    return torch.load(ckpt / f"rank_{rank}.pt", weights_only=False)
