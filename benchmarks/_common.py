"""Shared benchmark plumbing: interleaved timing, peak memory, environment facts, JSON + markdown.

Timing runs the providers *interleaved* (round r runs every provider once) so that a noisy,
shared machine slows them all alike and the ratios stay meaningful. Peak memory is measured
per provider on its own: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU a fresh
subprocess builds the inputs, resets the kernel's resident-set high-water mark (VmHWM, via
/proc/self/clear_refs), runs the provider once and reports VmHWM minus the resident set just
before the run, i.e. the *extra* memory the op needed on top of its inputs (gradients
included). Where VmHWM cannot be reset, ru_maxrss is used instead (an upper bound).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def git_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha.stdout.strip()[:12] + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.get_num_threads()} threads)"


def versions() -> dict:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("triton", "transformers", "liger_kernel"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


def environment(device: str) -> dict:
    return {"device": device_name(device), "versions": versions(), "git_sha": git_sha(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_interleaved(fns: dict[str, Callable[[], object]], device: str, reps: int, warmup: int = 1) -> dict[str, list]:
    """Seconds per call for each provider, rounds interleaved across providers."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync(device)
    times: dict[str, list] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def summarize(ts: list[float]) -> dict:
    ts = sorted(ts)
    return {"median_s": statistics.median(ts), "min_s": ts[0], "max_s": ts[-1], "reps": len(ts),
            "spread_pct": 100.0 * (ts[-1] - ts[0]) / statistics.median(ts) if ts else 0.0}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (VmHWM); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """VmHWM (resettable with reset_peak_rss), else ru_maxrss (since process start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return maxrss_bytes()


def child_peak(script: str, argv: list[str], timeout: int = 1800) -> dict:
    """Run ``script --child ...`` in a fresh interpreter; it prints one JSON line last."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    proc = subprocess.run([sys.executable, script, "--child", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_results(name: str, rows: list[dict], columns: list[tuple[str, str]], note: str = "",
                  out_dir: Path | None = None, tag: str = "") -> tuple[Path, Path]:
    """Write ``<name><tag>.json`` (all rows) and ``<name><tag>.md`` (a table of ``columns``)."""
    out_dir = out_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / f"{name}{tag}.json"
    mpath = out_dir / f"{name}{tag}.md"
    jpath.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [f"# {name}{tag}", ""]
    if rows:
        env = rows[0].get("env", {})
        lines += [f"device: {env.get('device')}; versions: {env.get('versions')}; git {env.get('git_sha')}; "
                  f"{env.get('time_utc')}", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(h for h, _ in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for r in rows:
        cells = []
        for _, key in columns:
            v = r.get(key)
            cells.append(f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    mpath.write_text("\n".join(lines) + "\n")
    return jpath, mpath
