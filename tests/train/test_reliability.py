"""Reliability properties: atomic checkpoints (R2), corruption detection (R3), collective
timeouts (R5), SIGTERM checkpoint (R11)."""

import shutil
import signal
import subprocess
import time

import pytest

from ifrl import checkpoint as ckpt_lib
from ifrl.config import load_config
from ifrl.train import train
from train_testlib import PY, REPO, child_env, read_metrics, tiny_overrides, torchrun


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    import torch

    run = tmp_path_factory.mktemp("ckpt") / "run"
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_config(str(REPO / "configs" / "tiny-cpu.yaml"),
                          tiny_overrides(run, steps=2, **{"checkpoint.every": 1, "algo.mini_batches": 1})))
    finally:
        torch.set_num_threads(prev)
    return run


def test_half_written_checkpoint_is_ignored(two_checkpoints, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints, run)
    root = run / "checkpoints"
    # A crash mid-save leaves a temp dir; a directory without a manifest is not complete either.
    shutil.copytree(root / "step_2", root / ".tmp-step_3")
    shutil.copytree(root / "step_2", root / "step_4")
    (root / "step_4" / "manifest.json").unlink()
    assert [s for s, _ in ckpt_lib.list_complete(root)] == [1, 2]
    assert ckpt_lib.find_resume(root, rank=0) == root / "step_2"


def test_corrupt_checkpoint_is_an_error_not_a_fresh_start(two_checkpoints, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoints, run)
    shard = next((run / "checkpoints" / "step_2").glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ckpt_lib.CheckpointError, match=rf"{shard.name} is corrupt \(checksum mismatch\)\. Delete"):
        ckpt_lib.find_resume(run / "checkpoints", rank=0)
    cfg = load_config(str(REPO / "configs" / "tiny-cpu.yaml"), tiny_overrides(run, steps=3))
    with pytest.raises(ckpt_lib.CheckpointError, match="corrupt"):
        train(cfg, resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(cfg, resume=False)


def test_sigterm_finishes_the_step_and_checkpoints(tmp_path):
    run = tmp_path / "run"
    cmd = [PY, "-m", "ifrl.train", "--config", "configs/tiny-cpu.yaml", *tiny_overrides(run, steps=200)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 1:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    last = read_metrics(run)[-1]["step"]
    assert 1 <= last < 200
    assert [s for s, _ in ckpt_lib.list_complete(run / "checkpoints")] == [last]
    assert "SIGTERM: stopped after step" in err + out


@pytest.mark.distributed
def test_hung_rank_becomes_an_error(tmp_path):
    env = child_env()
    env["IFRL_FAULT_HANG"] = "1:1"  # rank 1 stalls in step 1
    t0 = time.time()
    proc = torchrun(["--config", "configs/tiny-cpu.yaml", *tiny_overrides(tmp_path / "run", **{"parallel.timeout_s": 10})],
                    env=env, timeout=300)
    wall = time.time() - t0
    assert proc.returncode != 0
    assert "timed out" in proc.stderr.lower() or "timeout" in proc.stderr.lower(), proc.stderr[-3000:]
    assert wall < 240
