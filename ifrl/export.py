"""Write a training checkpoint as a Hugging Face folder (config, tokenizer, safetensors).

``ifrl export RUN_DIR/checkpoints/step_N OUT`` verifies the checkpoint's checksums, gathers the
sharded (DCP) policy weights into one state dict, puts them into the architecture named by the
checkpoint's config (``model.name``) and calls ``save_pretrained``; the folder loads with
``AutoModelForCausalLM.from_pretrained(OUT)`` and with SGLang. A run directory is accepted too
(its newest complete checkpoint is used).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoints/step_N folder (or a run directory)")
    parser.add_argument("out", help="output folder for the Hugging Face model")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                        help="dtype of the saved weights (default: the training dtype)")


def _resolve(path: Path) -> Path:
    from ifrl import checkpoint as ckpt_lib

    if (path / ckpt_lib.MANIFEST).is_file():
        return path
    done = ckpt_lib.list_complete(path / "checkpoints") or ckpt_lib.list_complete(path)
    if not done:
        raise ValueError(f"{path}: no complete checkpoint (a folder with manifest.json). Pass "
                         "RUN_DIR/checkpoints/step_N or a run directory that holds one.")
    return done[-1][1]


def load_policy_state(ckpt: str | Path) -> dict:
    """Verified, gathered policy weights of a checkpoint, keyed like the HF model's state dict."""
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from ifrl import checkpoint as ckpt_lib

    ckpt = _resolve(Path(ckpt))
    ckpt_lib.verify(ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        dcp_to_torch_save(str(ckpt), f"{tmp}/full.pt")
        full = torch.load(f"{tmp}/full.pt", weights_only=False, map_location="cpu")
    model_sd = full["policy"]["model"]
    return {k[len("lm."):]: v for k, v in model_sd.items() if k.startswith("lm.")}


def export(ckpt: str | Path, out: str | Path, dtype: str | None = None) -> Path:
    import torch
    import yaml

    from ifrl.models import load_model

    ckpt = _resolve(Path(ckpt))
    cfg = yaml.safe_load((ckpt / "config.yaml").read_text())
    state = load_policy_state(ckpt)
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype or cfg["model"]["dtype"]]
    model, tok = load_model(cfg["model"]["name"], dtype=torch.float32, device="cpu", seed=cfg["seed"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if model.config.tie_word_embeddings and k.endswith("lm_head.weight")}
    if set(missing) - tied or unexpected:
        raise ValueError(f"{ckpt}: weights do not fit {cfg['model']['name']}: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.to(dt).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def run(args) -> int:
    try:
        out = export(args.checkpoint, args.out, args.dtype)
    except (ValueError, RuntimeError) as e:
        print(f"ifrl export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
