"""Typed training configuration: dataclasses, YAML loading, dotted overrides, validation.

A config is a tree of dataclasses (``TrainConfig`` at the root). ``load_config(path, overrides)``
reads a YAML file, applies ``section.field=value`` overrides (values parsed as YAML scalars),
rejects unknown keys with a did-you-mean hint, converts types and validates ranges. Every
error is a ``ValueError`` that names the file/key, the bad value and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml


@dataclass
class ModelConfig:
    name: str = "tiny-random-llama"
    """Model for ``ifrl.models.load_model``: a known name (tiny-random-llama, tiny-random-qwen2,
    smollm2-135m-instruct) or a local Hugging Face folder."""
    dtype: str = "float32"
    """Parameter dtype of the master weights: float32 | bfloat16. Mixed precision (bf16 compute,
    fp32 master) is switched on with ``parallel.mixed_precision``."""
    gradient_checkpointing: bool = False
    """Recompute decoder-layer activations in backward (saves memory, costs ~30% time)."""
    attn_implementation: str = "sdpa"
    """Attention kernel for training forwards: sdpa | eager | flash_attention_2."""


@dataclass
class DataConfig:
    train_files: list[str] = field(default_factory=list)
    """JSONL files of seed-format rows: prompt, instruction_id_list, kwargs (+ constraints, key, level)."""
    prompt_field: str = "prompt"
    """Row field holding the instruction text."""
    system_prompt: Optional[str] = None
    """Optional system message prepended to every chat."""
    shuffle: bool = True
    """Shuffle prompts every epoch (seeded by ``seed`` and the epoch number)."""
    max_rows: int = 0
    """Use only the first N rows (0 = all)."""
    eval_files: list[str] = field(default_factory=list)
    """Held-out rows for the in-loop evaluation (``logging.eval_every``): files in any format
    ``ifrl.data.loaders.load_rows`` reads (IFEval's input_data.jsonl, seed rows, chat rows), or
    the names ifeval / ifbench for the bundled copies. Every row needs at least one constraint."""


@dataclass
class RolloutConfig:
    backend: str = "hf"
    """Rollout engine: hf (transformers generate, CPU/GPU)."""
    n: int = 5
    """Samples per prompt (the GRPO group size)."""
    temperature: float = 1.0
    """Sampling temperature; also divides logits when computing training log-probs."""
    top_p: float = 1.0
    """Nucleus sampling threshold (1.0 = off)."""
    top_k: int = 0
    """Top-k sampling (0 = off)."""
    max_new_tokens: int = 64
    """Maximum response length in tokens."""
    max_prompt_tokens: int = 1024
    """Prompts longer than this (after the chat template) are left-truncated."""
    stop_strings: list[str] = field(default_factory=list)
    """Extra stop strings besides the tokenizer's EOS."""
    batch_size: int = 64
    """Sequences per generate() call (bounds KV-cache memory)."""


@dataclass
class RewardConfig:
    scale: float = 5.0
    """Reward = scale * mean over constraints of the per-constraint score (seed: 5)."""
    reasoning_delimiter: Optional[str] = None
    """If set (seed reasoning models: "</think>\\n\\n"), only the text after it is scored and a
    response without it scores 0. None scores the whole response."""
    mode: str = "strict"
    """Verifier mode: strict | loose."""


@dataclass
class AlgoConfig:
    estimator: str = "grpo"
    """Advantage estimator: grpo | drgrpo | rloo | reinforce++ | gae (PPO with a critic)."""
    loss_agg: str = "token-mean"
    """Loss aggregation: token-mean | seq-mean-token-sum | seq-mean-token-mean."""
    clip_low: float = 0.2
    """PPO ratio clip below 1 (eps_low)."""
    clip_high: float = 0.2
    """PPO ratio clip above 1 (eps_high; DAPO clip-higher uses e.g. 0.28)."""
    kl: str = "k3"
    """KL estimator against the frozen reference: k1 | k2 | k3 (k3 = low-variance KL)."""
    kl_coef: float = 0.01
    """KL loss coefficient (0 disables the reference model)."""
    kl_in_reward: bool = False
    """Subtract kl_coef * KL(k1) from the token reward instead of adding a KL loss term."""
    gamma: float = 1.0
    """Discount for gae / reinforce++."""
    lam: float = 1.0
    """GAE lambda."""
    ppo_epochs: int = 1
    """Passes over the step's rollouts."""
    mini_batches: int = 1
    """Optimizer steps per pass (seed: 384 prompts per step, 96 per update -> 4)."""
    value_clip: float = 0.2
    """Critic value clipping for gae."""
    value_coef: float = 0.5
    """Critic loss weight for gae."""


@dataclass
class OptimConfig:
    lr: float = 1e-6
    """AdamW learning rate (seed 1e-6 for 7B; ~1e-5..3e-5 for 135M)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas."""
    eps: float = 1e-8
    """AdamW epsilon."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (0 = off)."""
    warmup_steps: int = 0
    """Linear warm-up optimizer steps, then constant."""
    critic_lr: float = 1e-5
    """Critic learning rate (gae only)."""


@dataclass
class ParallelConfig:
    micro_batch_tokens: int = 4096
    """Token budget of one packed micro-batch (prompt + response tokens)."""
    micro_batch_size: int = 0
    """Also cap sequences per micro-batch (0 = no cap)."""
    mixed_precision: bool = False
    """bf16 compute with fp32 master weights and fp32 gradient reduction (GPU)."""
    cpu_offload: bool = False
    """FSDP2 CPU offload of parameters and optimizer state."""
    hsdp_replicas: int = 1
    """>1: HSDP, replicate across this many groups (e.g. nodes), shard within each."""
    timeout_s: float = 600.0
    """Collective timeout; a hung rank becomes an error after this many seconds."""
    deterministic: bool = True
    """Request deterministic algorithms (CPU runs are bit-reproducible)."""


@dataclass
class CheckpointConfig:
    every: int = 0
    """Save every N steps (0 = only at the end and on SIGTERM)."""
    keep: int = 2
    """Keep the newest N complete checkpoints."""
    save_final: bool = True
    """Save after the last step."""


@dataclass
class LoggingConfig:
    print_every: int = 1
    """Print a line every N steps (rank 0)."""
    tensorboard: bool = False
    """Also write TensorBoard scalars when tensorboard is installed."""
    progress_bar: bool = True
    """tqdm progress bar on rank 0 (off when not a TTY)."""
    eval_every: int = 0
    """Greedy evaluation on ``data.eval_files`` every N steps, once before training and after the
    last step (0 = off);
    rank 0 appends strict/loose accuracy and response lengths to eval.jsonl in the run dir."""
    eval_max_new_tokens: int = 0
    """Response budget of the evaluation in tokens (0 = rollout.max_new_tokens, the training budget)."""
    eval_limit: int = 0
    """Evaluate only the first N eval rows (0 = all)."""


@dataclass
class TrainConfig:
    name: str = "run"
    """Run name; the run directory defaults to ./runs/<name>."""
    run_dir: Optional[str] = None
    """Explicit run directory (overrides ./runs/<name>)."""
    seed: int = 0
    """Seeds model init (random models), prompt order and sampling."""
    steps: int = 10
    """Training steps (one rollout + updates each)."""
    prompts_per_step: int = 8
    """Prompts per step across all ranks (must divide by the world size)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path("runs") / self.name


_CHOICES = {
    "model.dtype": ("float32", "bfloat16"),
    "model.attn_implementation": ("sdpa", "eager", "flash_attention_2", "flex_attention"),
    "rollout.backend": ("hf",),
    "reward.mode": ("strict", "loose"),
    "algo.estimator": ("grpo", "drgrpo", "rloo", "reinforce++", "gae"),
    "algo.loss_agg": ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean"),
    "algo.kl": ("k1", "k2", "k3"),
}
_POSITIVE = ("steps", "prompts_per_step", "rollout.n", "rollout.max_new_tokens", "rollout.max_prompt_tokens",
             "rollout.batch_size", "algo.ppo_epochs", "algo.mini_batches", "parallel.micro_batch_tokens",
             "parallel.hsdp_replicas", "parallel.timeout_s", "checkpoint.keep", "logging.print_every")
_NONNEGATIVE = ("optim.lr", "optim.weight_decay", "optim.grad_clip", "algo.kl_coef", "algo.clip_low", "algo.clip_high",
                "rollout.top_k", "parallel.micro_batch_size", "checkpoint.every", "optim.warmup_steps",
                "data.max_rows", "reward.scale", "logging.eval_every", "logging.eval_max_new_tokens",
                "logging.eval_limit")


def _hint(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" Did you mean '{close[0]}'?" if close else f" Known keys: {', '.join(options)}."


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], key, source)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{source}: '{key}' must be a list, got {value!r}. Write it as [a, b] in YAML.")
        (inner,) = typing.get_args(tp)
        return [_convert(v, inner, key, source) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{source}: '{key}' must be true or false, got {value!r}.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{source}: '{key}' must be an integer, got {value!r}.")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "1e-6" as a string
            except ValueError:
                pass
        raise ValueError(f"{source}: '{key}' must be a number, got {value!r}.")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{source}: '{key}' must be a string, got {value!r}.")
    return value


def _build(cls, data: dict, prefix: str, source: str):
    if not isinstance(data, dict):
        raise ValueError(f"{source}: section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in fields:
            raise ValueError(f"{source}: unknown config key '{full}'.{_hint(str(key), fields)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, full + ".", source)
        else:
            kwargs[key] = _convert(value, tp, full, source)
    return cls(**kwargs)


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"override '{dotted}': '{p}' is not a section.")
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict:
    tree: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override '{item}' is not key=value. Write e.g. optim.lr=1e-5.")
        key, raw = item.split("=", 1)
        _set_dotted(tree, key.strip(), yaml.safe_load(raw) if raw != "" else "")
    return tree


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config_from_dict(data: dict, source: str = "<config>") -> TrainConfig:
    cfg = _build(TrainConfig, data, "", source)
    validate(cfg, source)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config, apply ``key=value`` overrides, convert and validate."""
    data: dict = {}
    source = "<overrides>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ValueError(f"config file {p} does not exist. Pass an existing YAML file, e.g. configs/tiny-cpu.yaml.")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: not valid YAML ({e}). Fix the syntax at the reported line.") from None
    if overrides:
        data = _merge(data, parse_overrides(overrides))
    return config_from_dict(data, source)


def _get(cfg, dotted: str):
    node = cfg
    for p in dotted.split("."):
        node = getattr(node, p)
    return node


def validate(cfg: TrainConfig, source: str = "<config>") -> None:
    for key, choices in _CHOICES.items():
        v = _get(cfg, key)
        if v not in choices:
            raise ValueError(f"{source}: {key}={v!r} is not supported. Choose one of {', '.join(choices)}.")
    for key in _POSITIVE:
        if not _get(cfg, key) > 0:
            raise ValueError(f"{source}: {key}={_get(cfg, key)!r} must be > 0.")
    for key in _NONNEGATIVE:
        if _get(cfg, key) < 0:
            raise ValueError(f"{source}: {key}={_get(cfg, key)!r} must be >= 0.")
    if not 0.0 < cfg.rollout.top_p <= 1.0:
        raise ValueError(f"{source}: rollout.top_p={cfg.rollout.top_p} must be in (0, 1]. Use 1.0 to disable.")
    if cfg.rollout.temperature <= 0:
        raise ValueError(f"{source}: rollout.temperature={cfg.rollout.temperature} must be > 0 (RL needs sampling).")
    if cfg.algo.estimator in ("grpo", "drgrpo", "rloo") and cfg.rollout.n < 2:
        raise ValueError(f"{source}: algo.estimator={cfg.algo.estimator} compares samples within a group; "
                         f"rollout.n={cfg.rollout.n} must be >= 2.")
    if len(cfg.optim.betas) != 2:
        raise ValueError(f"{source}: optim.betas={cfg.optim.betas} must have two values, e.g. [0.9, 0.999].")
    if not cfg.data.train_files:
        raise ValueError(f"{source}: data.train_files is empty. List at least one JSONL file of training rows.")
    if cfg.logging.eval_every and not cfg.data.eval_files:
        raise ValueError(f"{source}: logging.eval_every={cfg.logging.eval_every} needs rows to evaluate on, but "
                         "data.eval_files is empty. List held-out files (e.g. data.eval_files=[ifeval]) or set "
                         "logging.eval_every=0.")


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
