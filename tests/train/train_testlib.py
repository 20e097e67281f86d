"""Helpers for the trainer tests: tiny configs, in-process and torchrun launches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
ROWS = REPO / "tests" / "fixtures" / "train" / "tiny_rows.jsonl"
PY = sys.executable


def tiny_overrides(run_dir, **extra) -> list[str]:
    base = {"run_dir": str(run_dir), "data.train_files": f"[{ROWS}]", "logging.progress_bar": "false",
            "parallel.timeout_s": "120"}
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]


def deterministic(rows: list[dict]) -> list[dict]:
    from ifrl.train import DETERMINISTIC_FIELDS

    return [{k: r[k] for k in DETERMINISTIC_FIELDS} for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               PYTHONFAULTHANDLER="1")  # a rank that aborts prints every thread's Python stack
    return env


def torchrun(args: list[str], nproc: int = 2, timeout: float = 300, env: dict | None = None, nnodes: int = 1,
             extra_launcher: list[str] | None = None):
    """Launch `torchrun -m ifrl.train ...` (single node, nproc ranks) and return the CompletedProcess."""
    cmd = [PY, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--master-addr=127.0.0.1",
           f"--master-port={free_port()}", *(extra_launcher or []), "-m", "ifrl.train", *args]
    return subprocess.run(cmd, cwd=REPO, env=env or child_env(), capture_output=True, text=True, timeout=timeout)




def time_limit(seconds: float) -> float:
    """A wall-clock bound for a quiet machine, stretched by CPU oversubscription (load average per
    core above 1) so a shared box does not turn a speed bound into a flaky test. On a quiet CI
    runner the factor is 1."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return seconds * max(1.0, load)
