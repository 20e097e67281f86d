"""Run GRPO/PPO training from a YAML config: one FSDP2 loop from a CPU laptop to multi-node GPUs.

Algorithm (one step; every rank does the same on its own slice of prompts):

  1. prompts:    the sampler hands each rank prompts_per_step / world_size rows (each row once
                 per epoch across all ranks); rows become chat messages.
  2. rollout:    the rollout engine (a full-weight inference copy) samples n responses per prompt,
                 seeded by (seed, step, rank).
  3. reward:     R = scale * mean_k r_k from the rule verifiers / answer matching; a sample whose
                 reward raises is logged and excluded.
  4. log-probs:  old log-probs (only when there is more than one update per step; otherwise the
                 ratio is exactly 1 and the update's own detached log-probs serve), reference
                 log-probs (frozen model) when kl_coef > 0, critic values for gae.
  5. advantage:  grpo | drgrpo | rloo (within each prompt's group), reinforce++ | gae (global
                 whitening); the arithmetic is ifrl.kernels (ifrl.algo adds the cross-rank parts).
  6. update:     ppo_epochs x mini_batches optimizer steps. Each mini-batch is packed padding-free
                 into token-budget micro-batches; the clipped surrogate (+ k1/k2/k3 KL loss,
                 fused in ifrl.kernels.policy_loss) is weighted by the mini-batch's *global*
                 token/sequence count, so results do not depend on micro-batch size or world size.
                 Non-finite loss or gradient norm on any rank skips the optimizer step on all ranks.
  7. sync:       the new weights are gathered and pushed to the rollout engine.
  8. log:        rank 0 appends a line to metrics.jsonl.
  9. checkpoint: DCP checkpoints every k steps, at the end and on SIGTERM.
  10. eval:      every logging.eval_every steps (and once before training) greedy responses to
                 data.eval_files, split across ranks, verified strict and loose; rank 0 appends
                 accuracies and response lengths to eval.jsonl.

Commands::

    ifrl train --config configs/tiny-cpu.yaml [steps=4 optim.lr=1e-5 ...] [--resume]
    torchrun --nproc-per-node=2 -m ifrl.train --config configs/tiny-cpu.yaml
    torchrun --nnodes=2 --node-rank=R --nproc-per-node=8 --master-addr=HOST --master-port=29500 \\
        -m ifrl.train --config configs/qwen2.5-7b-instruct.yaml

Python: ``ifrl.train.train(config, resume=False) -> run_dir``.

Failure behaviour: collectives time out after parallel.timeout_s; a non-finite loss or gradient
norm on any rank skips the update everywhere; SIGTERM finishes the step, checkpoints and exits 0
(a second SIGTERM exits at once); under ``torchrun --max-restarts=K`` a relaunched job resumes from
the newest complete checkpoint by itself. Test hooks: IFRL_FAULT_{NAN_LOSS,HANG,EXIT}="step:rank".
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("ifrl.train")

# Fields of metrics.jsonl that depend only on the seed and config (the rest are timings).
DETERMINISTIC_FIELDS = ("step", "epoch", "reward_mean", "reward_std", "loss", "kl", "clipfrac", "entropy",
                        "grad_norm", "response_len_mean", "tokens", "lr", "skipped", "reward_failures")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML training config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. steps=4 optim.lr=1e-5")
    parser.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint")
    parser.add_argument("--run-dir", default=None, help="run directory (default ./runs/<name>)")


def run(args) -> int:
    from ifrl.config import load_config

    overrides = list(args.overrides) + ([f"run_dir={args.run_dir}"] if args.run_dir else [])
    try:
        cfg = load_config(args.config, overrides)
    except ValueError as e:
        print(f"ifrl train: {e}", file=sys.stderr)
        return 2
    train(cfg, resume=args.resume)
    return 0


# ------------------------------------------------------------------------------------------------
def _load_rows(cfg):
    from ifrl.data.loaders import load_rows
    from ifrl.reward.compose import check_rows

    rows = []
    for f in cfg.data.train_files:
        part = load_rows(f, check_ids=True)
        check_rows(part, str(f))
        rows.extend(part)
    return rows[:cfg.data.max_rows] if cfg.data.max_rows else rows


def _messages(cfg, row) -> list[dict]:
    msgs = list(row.get("messages") or [{"role": "user", "content": row["prompt"]}])
    if cfg.data.system_prompt and not any(m["role"] == "system" for m in msgs):
        msgs = [{"role": "system", "content": cfg.data.system_prompt}] + msgs
    return msgs


def _fault(name: str, step: int, rank: int) -> bool:
    """Test hook: IFRL_FAULT_<NAME>="step:rank" triggers a fault (nan loss, hang) there."""
    spec = os.environ.get(f"IFRL_FAULT_{name.upper()}")
    return bool(spec) and spec == f"{step}:{rank}"


def _build_models(cfg, info):
    import torch
    from torch import nn
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    from ifrl.algo import token_logprobs
    from ifrl.models import load_model

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.model.dtype]
    lm, tok = load_model(cfg.model.name, dtype=dtype, device="cpu", seed=cfg.seed,
                         attn_implementation=cfg.model.attn_implementation)
    engine_lm = copy.deepcopy(lm)
    if cfg.parallel.mixed_precision:
        engine_lm = engine_lm.to(torch.bfloat16)

    class Policy(nn.Module):
        """Root FSDP unit: owns embeddings, final norm and lm_head so the fused log-prob sees them."""

        def __init__(self, lm, value_head: bool = False):
            super().__init__()
            self.lm = lm
            self.value_head = nn.Linear(lm.config.hidden_size, 1) if value_head else None
            if value_head:
                nn.init.zeros_(self.value_head.weight)
                nn.init.zeros_(self.value_head.bias)

        def forward(self, input_ids_T, position_ids_T, labels_T, temperature: float = 1.0, entropy: bool = False):
            base = getattr(self.lm, self.lm.base_model_prefix)
            hidden_TH = base(input_ids=input_ids_T[None], position_ids=position_ids_T[None],
                             use_cache=False).last_hidden_state[0]
            sel_T = labels_T >= 0
            # `anchor` keeps every parameter in the graph even for an empty (padding) micro-batch,
            # so FSDP's backward collectives run the same number of times on every rank.
            anchor = hidden_TH.sum() * 0.0
            if self.value_head is not None:
                return self.value_head(hidden_TH[sel_T].float())[:, 0] + anchor, None
            out = token_logprobs(hidden_TH[sel_T], self.lm.get_output_embeddings().weight, labels_T[sel_T],
                                 temperature=temperature, return_entropy=entropy)
            logp_N, ent_N = out if entropy else (out, None)
            return logp_N + anchor, ent_N

    def shard(module, trainable: bool):
        kw = dict(mesh=info.mesh)
        if cfg.parallel.mixed_precision:
            kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if cfg.parallel.cpu_offload and trainable:
            kw["offload_policy"] = CPUOffloadPolicy()
        for layer in getattr(module.lm, module.lm.base_model_prefix).layers:
            fully_shard(layer, **kw)
        fully_shard(module, **kw)
        if not cfg.parallel.cpu_offload:
            module.to(info.device)
        return module

    if cfg.model.gradient_checkpointing:
        if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.2x name
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lm.train()
    policy = shard(Policy(lm), True)
    ref = critic = None
    if cfg.algo.kl_coef > 0:
        ref_lm = copy.deepcopy(engine_lm if not cfg.parallel.mixed_precision else lm).eval()
        ref = shard(Policy(ref_lm).requires_grad_(False), False)
    if cfg.algo.estimator == "gae":
        critic_lm = copy.deepcopy(engine_lm).float().train()
        critic = shard(Policy(critic_lm, value_head=True), True)
        critic_lm.get_output_embeddings().requires_grad_(False)  # unused by the value head
    return policy, ref, critic, engine_lm.to(info.device), tok


class _AppState:
    """DCP-saveable (model, optimizer) pair; uses the distributed state-dict API (sharded)."""

    def __init__(self, model, optim):
        self.model, self.optim = model, optim

    def state_dict(self):
        from torch.distributed.checkpoint.state_dict import get_state_dict

        msd, osd = get_state_dict(self.model, self.optim)
        return {"model": msd, "optim": osd}

    def load_state_dict(self, sd):
        from torch.distributed.checkpoint.state_dict import set_state_dict

        set_state_dict(self.model, self.optim, model_state_dict=sd["model"], optim_state_dict=sd["optim"])


def _make_optim(params, lr, cfg):
    import torch

    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, betas=tuple(cfg.optim.betas),
                             eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)


def _forward_pass(model, mbs, cfg, B, R, device, entropy=False):
    """No-grad pass over packed micro-batches; returns per-token values scattered to [B, R]."""
    import torch

    out_BR = torch.zeros(B, R)
    with torch.no_grad():
        for mb in mbs:
            val_N, _ = model(mb.input_ids_T.to(device), mb.position_ids_T.to(device), mb.labels_T.to(device),
                             temperature=cfg.rollout.temperature)
            sel = mb.labels_T >= 0
            out_BR[mb.sample_T[sel], mb.resp_pos_T[sel]] = val_N.float().cpu()
    return out_BR


def _padded_micro_batches(prompt_ids, resp_ids, samples, cfg, pad_id):
    import torch

    from ifrl.dist import all_reduce_max
    from ifrl.packing import build_micro_batches, empty_micro_batch

    mbs = build_micro_batches(prompt_ids, resp_ids, samples, cfg.parallel.micro_batch_tokens,
                              cfg.parallel.micro_batch_size) if samples else []
    count = all_reduce_max(torch.tensor([len(mbs)]))
    return mbs + [empty_micro_batch(pad_id) for _ in range(int(count) - len(mbs))]


def train(cfg, resume: bool = False) -> Path:
    """Run training as configured; returns the run directory. Collective under torchrun."""
    import numpy as np
    import torch
    import yaml

    from ifrl import checkpoint as ckpt_lib
    from ifrl.algo import compute_advantages, kl_penalty
    from ifrl.config import to_dict
    from ifrl.dist import all_reduce_max, all_reduce_sum, init_distributed, shutdown
    from ifrl.eval import in_loop
    from ifrl.reward.compose import RewardFn
    from ifrl.rollout import SamplingParams, make_engine
    from ifrl.sampler import PromptSampler

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # torchrun --max-restarts relaunches every rank after a failure: pick up the last checkpoint.
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    resume = resume or restarted
    info = init_distributed(cfg.parallel.timeout_s, cfg.parallel.hsdp_replicas)
    tb = None
    try:
        rank, world, device = info.rank, info.world_size, info.device
        if cfg.parallel.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        run_dir = cfg.resolved_run_dir()
        ckpt_root = run_dir / "checkpoints"
        config_yaml = yaml.safe_dump(to_dict(cfg), sort_keys=False)
        if not resume and ckpt_lib.list_complete(ckpt_root):
            raise ValueError(f"{run_dir} already holds checkpoints. Pass --resume (train(cfg, resume=True)) to "
                             "continue, or choose another name / run_dir to start fresh.")
        torch.manual_seed(cfg.seed)
        rows = _load_rows(cfg)
        eval_rows = in_loop.load_eval_files(cfg.data.eval_files, cfg.logging.eval_limit) if cfg.logging.eval_every else []
        policy, ref, critic, engine_lm, tok = _build_models(cfg, info)
        engine = make_engine(cfg.rollout.backend, engine_lm, tok, batch_size=cfg.rollout.batch_size,
                             max_prompt_tokens=cfg.rollout.max_prompt_tokens, device=device)
        optim = _make_optim(policy.parameters(), cfg.optim.lr, cfg)
        warm = cfg.optim.warmup_steps
        sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
        critic_optim = _make_optim(critic.parameters(), cfg.optim.critic_lr, cfg) if critic is not None else None
        sampler = PromptSampler(len(rows), cfg.prompts_per_step, rank, world, cfg.seed, cfg.data.shuffle)
        reward_fn = RewardFn(cfg.reward)
        app_state = {"policy": _AppState(policy, optim)}
        if critic is not None:
            app_state["critic"] = _AppState(critic, critic_optim)

        start_step = 0
        if resume:
            found = ckpt_lib.find_resume(ckpt_root, rank)
            if found is not None:
                extra = ckpt_lib.load(found, rank=rank, world_size=world, app_state=app_state)
                start_step = extra["step"]
                sampler.load_state_dict(extra["sampler"])
                sched.load_state_dict(extra["scheduler"])
                ckpt_lib.set_rng_state(extra["rng"])
                if rank == 0:
                    log.info("resumed from %s (step %d)", found, start_step)
        eval_missing = 0.0
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(config_yaml)
            _truncate_log(run_dir / "metrics.jsonl", start_step if resume else None)
            eval_steps = _truncate_log(run_dir / "eval.jsonl", start_step if resume else None)
            eval_missing = float(start_step not in eval_steps)

        def push_weights():
            # full_tensor() all-gathers shards: every rank takes part, in the same order.
            engine.update_weights((n[len("lm."):], p.full_tensor() if hasattr(p, "full_tensor") else p)
                                  for n, p in policy.named_parameters())

        if start_step:
            push_weights()
        stop = {"flag": False}

        def on_sigterm(*_):
            if stop["flag"]:  # a second SIGTERM (e.g. torchrun tearing down after a peer died): go now
                raise SystemExit(143)
            stop["flag"] = True  # finish the step, checkpoint, exit

        prev = signal.signal(signal.SIGTERM, on_sigterm) if _is_main_thread() else None

        tb = _tensorboard(run_dir) if rank == 0 and cfg.logging.tensorboard else None
        pbar = None
        if rank == 0 and cfg.logging.progress_bar and sys.stderr.isatty():
            from tqdm import tqdm

            pbar = tqdm(total=cfg.steps, initial=start_step, desc="train", dynamic_ncols=True)

        def evaluate(at_step):
            rng = ckpt_lib.rng_state()  # evaluation must not shift the training RNG (resume == straight)
            rec = in_loop.evaluate(engine, eval_rows, at_step, rank=rank, world_size=world,
                                   max_new_tokens=cfg.logging.eval_max_new_tokens or cfg.rollout.max_new_tokens,
                                   batch_size=cfg.rollout.batch_size, system_prompt=cfg.data.system_prompt,
                                   answer_after=cfg.reward.reasoning_delimiter)
            ckpt_lib.set_rng_state(rng)
            if rank == 0:
                with (run_dir / "eval.jsonl").open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                line = in_loop.format_line(rec)
                (pbar.write(line) if pbar else print(line, flush=True))
                if tb is not None:
                    for key in ("prompt_strict", "instruction_strict", "response_words_mean"):
                        tb.add_scalar(f"eval/{key}", rec[key], at_step)

        # The baseline (step 0), or an evaluation a stop or crash left out at the checkpoint's step;
        # only rank 0 reads eval.jsonl, the max tells every rank.
        def eval_due(at_step):  # every k steps, and always after the last one
            return cfg.logging.eval_every and (at_step % cfg.logging.eval_every == 0 or at_step == cfg.steps)

        if eval_due(start_step) and all_reduce_max(torch.tensor([eval_missing])).item():
            evaluate(start_step)
        pad_id = engine.pad_id
        n = cfg.rollout.n
        a = cfg.algo
        updates = a.ppo_epochs * a.mini_batches
        step = start_step
        for step in range(start_step + 1, cfg.steps + 1):
            times = {}
            t_step = t = time.perf_counter()
            # 1-2. prompts -> rollout -------------------------------------------------------------
            idx = sampler.next()
            step_rows = [rows[i] for i in idx]
            engine.resume()
            sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.top_k,
                                      cfg.rollout.max_new_tokens, cfg.rollout.stop_strings,
                                      seed=(cfg.seed * 1_000_003 + step) * 4099 + rank)
            comps = engine.generate([_messages(cfg, r) for r in step_rows], n, sampling) if step_rows else []
            engine.release()
            times["time_rollout_s"] = time.perf_counter() - t
            # 3. reward --------------------------------------------------------------------------
            t = time.perf_counter()
            fails0 = reward_fn.failures
            scores = reward_fn([c.text for c in comps], [step_rows[c.prompt_index] for c in comps])
            valid_B = torch.tensor([s is not None for s in scores], dtype=torch.bool)
            reward_B = torch.tensor([s if s is not None else 0.0 for s in scores], dtype=torch.float32)
            times["time_reward_s"] = time.perf_counter() - t
            # 4. old / ref log-probs, values -----------------------------------------------------
            t = time.perf_counter()
            prompt_ids = [c.prompt_ids for c in comps]
            resp_ids = [c.response_ids for c in comps]
            B, R = len(comps), max([len(r) for r in resp_ids] + [1])
            len_B = torch.tensor([len(r) for r in resp_ids] or [], dtype=torch.long)
            mask_BR = (torch.arange(R)[None, :] < len_B[:, None]).float() if B else torch.zeros(0, R)
            all_mbs = _padded_micro_batches(prompt_ids, resp_ids, list(range(B)), cfg, pad_id)
            old_BR = _forward_pass(policy, all_mbs, cfg, B, R, device) if updates > 1 else None
            ref_BR = _forward_pass(ref, all_mbs, cfg, B, R, device) if ref is not None else None
            values_BR = _forward_pass(critic, all_mbs, cfg, B, R, device) if critic is not None else None
            token_kl_BR = None
            if a.kl_in_reward and ref_BR is not None:
                base_BR = old_BR if old_BR is not None else _forward_pass(policy, all_mbs, cfg, B, R, device)
                token_kl_BR = kl_penalty(base_BR, ref_BR, "k1") * mask_BR
            times["time_logprob_s"] = time.perf_counter() - t
            # 5. advantages ----------------------------------------------------------------------
            adv_BR, ret_BR = compute_advantages(a.estimator, reward_B, valid_B, mask_BR, n, gamma=a.gamma, lam=a.lam,
                                                values_BR=values_BR, token_kl_BR=token_kl_BR, kl_coef=a.kl_coef)
            # 6. updates -------------------------------------------------------------------------
            t = time.perf_counter()
            batch = {"old_BR": old_BR, "ref_BR": ref_BR, "adv_BR": adv_BR, "ret_BR": ret_BR, "values_BR": values_BR,
                     "len_B": len_B}
            acc = torch.zeros(8, dtype=torch.float64)  # loss, kl, clip, entropy, tokens, grad_norm, skipped, vloss
            groups = [list(range(g * n, (g + 1) * n)) for g in range(B // n)]
            for _epoch in range(a.ppo_epochs):
                for mi in range(a.mini_batches):
                    mg = groups[mi * len(groups) // a.mini_batches:(mi + 1) * len(groups) // a.mini_batches]
                    samples = [s for g in mg for s in g if valid_B[s]]
                    counts = all_reduce_sum(torch.tensor([float(len_B[samples].sum()) if samples else 0.0,
                                                          float(len(samples))], dtype=torch.float64))
                    g_tok, g_seq = max(counts[0].item(), 1.0), max(counts[1].item(), 1.0)
                    mbs = _padded_micro_batches(prompt_ids, resp_ids, samples, cfg, pad_id)
                    acc_mb = torch.zeros(6, dtype=torch.float64, device=device)
                    for k, mb in enumerate(mbs):
                        last_mb = k == len(mbs) - 1
                        backward_micro_batch(policy, critic, mb, batch, cfg, g_tok, g_seq, world, device, acc_mb,
                                             grad_sync=last_mb, nan=_fault("nan_loss", step, rank))
                    acc_mb = acc_mb.cpu()
                    loss_local = acc_mb[0]
                    acc[1:5] += acc_mb[1:5]
                    acc[7] += acc_mb[5]
                    if _fault("hang", step, rank):
                        time.sleep(cfg.parallel.timeout_s + 20)
                    loss_global = all_reduce_sum(loss_local.clone())
                    gn = _clip(policy, cfg.optim.grad_clip)
                    finite = math.isfinite(float(loss_global)) and math.isfinite(gn)
                    if critic is not None:
                        finite = _clip(critic, cfg.optim.grad_clip) < float("inf") and finite
                    if finite:
                        optim.step()
                        sched.step()
                        if critic_optim is not None:
                            critic_optim.step()
                    else:
                        acc[6] += 1
                        if rank == 0:
                            log.warning("step %d: non-finite loss/grad norm (loss=%s, grad_norm=%s); update skipped "
                                        "on all ranks", step, float(loss_global), gn)
                    optim.zero_grad(set_to_none=True)
                    if critic_optim is not None:
                        critic_optim.zero_grad(set_to_none=True)
                    acc[0] += float(loss_global) if finite else 0.0
                    acc[5] += gn if finite else 0.0
            times["time_update_s"] = time.perf_counter() - t
            # 7. weight sync ---------------------------------------------------------------------
            t = time.perf_counter()
            push_weights()
            times["time_sync_s"] = time.perf_counter() - t
            # 8. metrics -------------------------------------------------------------------------
            v = valid_B.double()
            seq_tok = torch.tensor([len(p) + len(r) for p, r in zip(prompt_ids, resp_ids)] or [0], dtype=torch.float64)
            stats = all_reduce_sum(torch.cat([acc[1:5], acc[7:8], torch.tensor([
                float((reward_B.double() * v).sum()), float((reward_B.double() ** 2 * v).sum()), float(v.sum()),
                float(len_B.double().sum()) if B else 0.0, float(B), float(seq_tok.sum()),
                float(reward_fn.failures - fails0)], dtype=torch.float64)]))
            kl_s, clip_s, ent_s, tok_s, vloss, r_s, r2_s, r_n, len_s, n_s, all_tok, fails = stats.tolist()
            done = max(updates - acc[6].item(), 1)
            step_time = time.perf_counter() - t_step
            r_mean = r_s / max(r_n, 1)
            metrics = {
                "step": step, "epoch": sampler.epoch, "reward_mean": r_mean,
                "reward_std": math.sqrt(max(r2_s / max(r_n, 1) - r_mean ** 2, 0.0)),
                "loss": acc[0].item() / done, "kl": kl_s / max(tok_s, 1), "clipfrac": clip_s / max(tok_s, 1),
                "entropy": ent_s / max(tok_s, 1), "grad_norm": acc[5].item() / done,
                "response_len_mean": len_s / max(n_s, 1), "tokens": int(all_tok), "lr": sched.get_last_lr()[0],
                "skipped": int(acc[6].item()), "reward_failures": int(fails),
                "tok_per_s": all_tok / step_time, "step_time_s": step_time, **times,
                "peak_mem_gb": _peak_mem_gb(device)}
            if critic is not None:
                metrics["value_loss"] = vloss / max(updates, 1)
            if rank == 0:
                with (run_dir / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps(metrics) + "\n")
                if step % cfg.logging.print_every == 0:
                    line = (f"step {step:>5} | reward {r_mean:7.4f} | loss {metrics['loss']:+.4f} | kl {metrics['kl']:.4f}"
                            f" | clip {metrics['clipfrac']:.3f} | gnorm {metrics['grad_norm']:.3f}"
                            f" | len {metrics['response_len_mean']:.1f} | {metrics['tok_per_s']:.0f} tok/s"
                            f" | {step_time:.2f}s | mem {metrics['peak_mem_gb']:.2f}GB")
                    (pbar.write(line) if pbar else print(line, flush=True))
                if pbar:
                    pbar.update(1)
                if tb is not None:
                    for key, val in metrics.items():
                        tb.add_scalar(key, val, step)
            if _fault("exit", step, rank) and not restarted:
                os._exit(17)  # a crashed rank (test hook for the restart path)
            # 9. checkpoint ----------------------------------------------------------------------
            stopping = bool(all_reduce_max(torch.tensor([1.0 if stop["flag"] else 0.0])).item())
            last = step == cfg.steps
            if stopping or (cfg.checkpoint.every and step % cfg.checkpoint.every == 0) or \
                    (last and cfg.checkpoint.save_final):
                ckpt_lib.save(ckpt_root, step, rank=rank, world_size=world, app_state=app_state, config_yaml=config_yaml,
                              keep=cfg.checkpoint.keep,
                              rank_state={"step": step, "sampler": sampler.state_dict(), "scheduler": sched.state_dict(),
                                          "rng": ckpt_lib.rng_state()})
            if stopping:
                if rank == 0:
                    log.info("SIGTERM: stopped after step %d; checkpoint saved in %s", step, ckpt_root)
                break
            # 10. eval ---------------------------------------------------------------------------
            if eval_due(step):
                evaluate(step)
        if pbar:
            pbar.close()
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
        _ = np  # numpy RNG state is saved through checkpoint.rng_state
        return run_dir
    finally:
        if tb is not None:
            tb.close()  # flushes the event file (a process ended by dist.leave runs no exit handlers)
        shutdown(info)


def backward_micro_batch(policy, critic, mb, batch, cfg, g_tok, g_seq, world, device, acc, grad_sync=True, nan=False):
    """Forward + backward of one packed micro-batch; adds [loss, kl, clip, entropy, tokens, vloss]
    sums into ``acc`` (on device: no host sync here). Gradients accumulate in ``.grad``."""
    import torch

    from ifrl.algo import policy_loss, token_weights, value_loss

    a = cfg.algo
    policy.set_requires_gradient_sync(grad_sync)
    sel_T = mb.labels_T >= 0
    s_N, p_N = mb.sample_T[sel_T], mb.resp_pos_T[sel_T]
    ids_T, pos_T, lab_T = mb.input_ids_T.to(device), mb.position_ids_T.to(device), mb.labels_T.to(device)
    logp_N, ent_N = policy(ids_T, pos_T, lab_T, temperature=cfg.rollout.temperature, entropy=True)
    logp_N = logp_N.float()
    old_N = batch["old_BR"][s_N, p_N].to(device) if batch["old_BR"] is not None else logp_N.detach()
    ref_N = None if batch["ref_BR"] is None else batch["ref_BR"][s_N, p_N].to(device)
    w_N = token_weights(a.loss_agg, batch["len_B"][s_N], g_tok, g_seq).to(device)
    loss, m = policy_loss(logp_N, old_N, batch["adv_BR"][s_N, p_N].to(device), w_N, clip_low=a.clip_low,
                          clip_high=a.clip_high, ref_N=ref_N, kl=a.kl, kl_coef=0.0 if a.kl_in_reward else a.kl_coef)
    if nan:  # fault injection for the skip-on-all-ranks test
        loss = loss * float("nan")
    # FSDP averages gradients over ranks; the loss is already normalised by global counts.
    (loss * world).backward()
    zero = torch.zeros((), device=device)
    vl = zero
    if critic is not None:
        critic.set_requires_gradient_sync(grad_sync)
        v_N, _ = critic(ids_T, pos_T, lab_T)
        vl = value_loss(v_N.float(), batch["values_BR"][s_N, p_N].to(device), batch["ret_BR"][s_N, p_N].to(device),
                        w_N, a.value_clip)
        (vl * world * a.value_coef).backward()
    acc += torch.stack([loss.detach(), m.get("kl_sum", zero), m["clip_sum"].to(device),
                        ent_N.detach().sum() if ent_N is not None else zero, m["tokens"].to(device),
                        vl.detach()]).double()


def _truncate_log(path: Path, keep_upto: int | None) -> set:
    """Keep the lines of a per-step JSONL log with step <= ``keep_upto`` (None: start it empty) and
    return their steps: lines past the checkpoint were written before a crash and are redone."""
    kept = []
    if keep_upto is not None and path.exists():
        kept = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= keep_upto]
    path.write_text("".join(ln + "\n" for ln in kept))
    return {json.loads(ln)["step"] for ln in kept}


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("logging.tensorboard=true but tensorboard is not installed (pip install tensorboard); "
                    "metrics.jsonl is still written")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _clip(model, max_norm: float) -> float:
    import torch

    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"), foreach=True)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return float(norm)


def _peak_mem_gb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ifrl.train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    from ifrl.dist import leave

    leave(main())
