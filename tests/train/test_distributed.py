"""torchrun runs of the trainer on CPU/gloo: 2 ranks, 2 "nodes" on 127.0.0.1, resume on 2 ranks."""

import math
import subprocess
import time

import pytest
import torch

from ifrl.export import load_policy_state
from train_testlib import PY, REPO, child_env, deterministic, free_port, read_metrics, time_limit, tiny_overrides, torchrun

pytestmark = pytest.mark.distributed
CONFIG = "configs/tiny-cpu.yaml"


def _ok(proc):
    assert proc.returncode == 0, f"rc={proc.returncode}\nSTDOUT:\n{proc.stdout[-2000:]}\nSTDERR:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    """4 steps straight, and 2 steps + resume + 2 steps, both on 2 ranks."""
    root = tmp_path_factory.mktemp("dist")
    t0 = time.time()
    straight = torchrun(["--config", CONFIG, *tiny_overrides(root / "straight")])
    wall = time.time() - t0
    _ok(straight)
    first = torchrun(["--config", CONFIG, *tiny_overrides(root / "split", steps=2)])
    _ok(first)
    second = torchrun(["--config", CONFIG, "--resume", *tiny_overrides(root / "split", steps=4)])
    _ok(second)
    return root, wall, straight


def test_two_ranks_four_steps(two_rank_runs):
    from ifrl.models import load_model

    root, wall, proc = two_rank_runs
    assert wall < time_limit(120), f"4 steps on 2 ranks took {wall:.1f}s"
    rows = read_metrics(root / "straight")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert proc.stdout.count("| reward") == 4  # only rank 0 prints
    final = load_policy_state(root / "straight")
    init = dict(load_model("tiny-random-llama", seed=0)[0].named_parameters())
    assert [k for k, v in init.items() if torch.equal(v, final[k])] == []


def test_two_ranks_resume_is_bit_identical(two_rank_runs):
    root, _, _ = two_rank_runs
    assert deterministic(read_metrics(root / "split")) == deterministic(read_metrics(root / "straight"))
    a, b = load_policy_state(root / "straight"), load_policy_state(root / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_nodes_on_localhost_match_two_ranks(two_rank_runs, tmp_path):
    root, _, _ = two_rank_runs
    port = free_port()
    run_dir = tmp_path / "nodes"
    procs = []
    t0 = time.time()
    for node in (0, 1):
        cmd = [PY, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}", "--nproc-per-node=1",
               "--master-addr=127.0.0.1", f"--master-port={port}", "-m", "ifrl.train", "--config", CONFIG,
               *tiny_overrides(run_dir)]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    wall = time.time() - t0
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    assert wall < time_limit(120), f"2-node run took {wall:.1f}s"
    # Same world size, same seed: a 2-node run is the same computation as 2 ranks on one node.
    assert deterministic(read_metrics(run_dir)) == deterministic(read_metrics(root / "straight"))


def test_nonfinite_loss_on_one_rank_skips_the_step_on_all(two_rank_runs, tmp_path):
    root, _, _ = two_rank_runs
    env = child_env()
    env["IFRL_FAULT_NAN_LOSS"] = "2:1"  # rank 1's loss is NaN throughout step 2
    run_dir = tmp_path / "nan"
    _ok(torchrun(["--config", CONFIG, *tiny_overrides(run_dir)], env=env))
    rows, ref = read_metrics(run_dir), read_metrics(root / "straight")
    assert deterministic(rows[:1]) == deterministic(ref[:1])
    assert rows[1]["skipped"] == 2  # both mini-batch updates of step 2, on every rank
    assert [r["skipped"] for r in rows[2:]] == [0, 0]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows)
    a, b = load_policy_state(run_dir), load_policy_state(root / "straight")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_killed_rank_restarts_and_reaches_the_same_result(two_rank_runs, tmp_path):
    """R4: rank 1 dies after step 3; torchrun --max-restarts relaunches both ranks, which resume
    from the step-2 checkpoint and finish bit-identical to the uninterrupted run."""
    root, _, _ = two_rank_runs
    env = child_env()
    env["IFRL_FAULT_EXIT"] = "3:1"
    run_dir = tmp_path / "restart"
    proc = torchrun(["--config", CONFIG, *tiny_overrides(run_dir, **{"checkpoint.every": 2})], env=env,
                    extra_launcher=["--max-restarts=1"])
    _ok(proc)
    assert "resumed from" in proc.stdout + proc.stderr
    assert deterministic(read_metrics(run_dir)) == deterministic(read_metrics(root / "straight"))
    a, b = load_policy_state(run_dir), load_policy_state(root / "straight")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_hsdp_mesh_gives_the_same_result(two_rank_runs, tmp_path):
    """parallel.hsdp_replicas=2 (2-D mesh: replicate x shard) computes the same step as FSDP on 2 ranks."""
    root, _, _ = two_rank_runs
    run_dir = tmp_path / "hsdp"
    _ok(torchrun(["--config", CONFIG, *tiny_overrides(run_dir, **{"parallel.hsdp_replicas": 2})]))
    got, want = deterministic(read_metrics(run_dir)), deterministic(read_metrics(root / "straight"))
    assert [r["reward_mean"] for r in got] == [r["reward_mean"] for r in want]
    for g, w in zip(got, want):
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-4, abs=1e-7)
        assert g["grad_norm"] == pytest.approx(w["grad_norm"], rel=1e-4, abs=1e-7)


_LEAVE = """
import atexit, sys
from ifrl import dist
if sys.argv[1] == "group":
    dist.shutdown(dist.init_distributed())
atexit.register(lambda: print("atexit ran"))
sys.stdout.write("no newline, still buffered")
dist.leave(7)
"""


@pytest.mark.parametrize("group", [True, False], ids=["after-a-group", "no-group"])
def test_leave_exits_with_the_code_and_flushed_output(group):
    """A process that started a group ends without interpreter teardown (the backend's threads
    outlive destroy_process_group); its buffered output still gets out. Without a group it is a
    plain sys.exit, exit handlers included."""
    env = {k: v for k, v in child_env().items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([PY, "-c", _LEAVE, "group" if group else "plain"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, proc.stderr[-2000:]
    assert proc.stdout == ("no newline, still buffered" if group else "no newline, still bufferedatexit ran\n")
