"""Fixtures of the trainer tests (helpers live in train_testlib.py)."""

import pytest

from train_testlib import REPO


@pytest.fixture
def config_path():
    return str(REPO / "configs" / "tiny-cpu.yaml")


@pytest.fixture(autouse=True)
def _one_thread():
    """In-process training runs use one intra-op thread, like the torchrun children (2 shared cores)."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
