"""Transformers rollout backend: batched ``model.generate`` with a KV cache, on CPU or GPU.

The engine owns a full (unsharded) copy of the policy, like an inference server would; the
trainer pushes new weights with ``update_weights`` after each optimizer step. Sampling is seeded
per call (``SamplingParams.seed`` + batch index) inside a forked RNG, so it neither depends on nor
disturbs the trainer's global RNG stream.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ifrl.rollout.base import Completion, SamplingParams, encode_prompts


class HFEngine:
    def __init__(self, model, tokenizer, *, batch_size: int = 64, max_prompt_tokens: int = 1024,
                 device: torch.device | str = "cpu"):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.device = torch.device(device)
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        for p in self.model.parameters():
            p.requires_grad_(False)

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [] if ids is None else ([ids] if isinstance(ids, int) else list(ids))
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise ValueError("the tokenizer and model define no EOS token; set generation_config.eos_token_id.")
        return ids

    # -- interface -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[list[dict]], n: int, sampling: SamplingParams) -> list[Completion]:
        from transformers import GenerationConfig

        prompt_ids = encode_prompts(self.tokenizer, prompts, self.max_prompt_tokens)
        flat = [(i, prompt_ids[i]) for i in range(len(prompt_ids)) for _ in range(n)]
        gen_cfg = GenerationConfig(
            do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
            max_new_tokens=sampling.max_new_tokens, eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
            stop_strings=list(sampling.stop_strings) or None, use_cache=True)
        out: list[Completion] = []
        for b0 in range(0, len(flat), self.batch_size):
            chunk = flat[b0:b0 + self.batch_size]
            width = max(len(ids) for _, ids in chunk)
            input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (_, ids) in enumerate(chunk):  # left padding: generation continues at the right edge
                input_ids[r, width - len(ids):] = torch.tensor(ids)
                attn[r, width - len(ids):] = 1
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(sampling.seed * 1_000_003 + b0)
                seqs = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=attn.to(self.device),
                                           generation_config=gen_cfg, tokenizer=self.tokenizer)
            new_tokens = seqs[:, width:].tolist()
            for (pi, ids), toks in zip(chunk, new_tokens):
                resp, reason = self._trim(toks, sampling)
                out.append(Completion(pi, list(ids), resp, self.tokenizer.decode(resp, skip_special_tokens=True), reason))
        return out

    def _trim(self, toks: list[int], sampling: SamplingParams) -> tuple[list[int], str]:
        # Keep EOS in the response: the policy must learn the probability of stopping.
        for k, t in enumerate(toks):
            if t in self.eos_ids:
                return toks[:k + 1], "eos"
        if sampling.stop_strings:
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            if any(s in text for s in sampling.stop_strings):
                for k in range(1, len(toks) + 1):
                    part = self.tokenizer.decode(toks[:k], skip_special_tokens=True)
                    if any(s in part for s in sampling.stop_strings):
                        return toks[:k], "stop"
        return toks, "length"

    @torch.no_grad()
    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        params = dict(self.model.named_parameters())
        seen = set()
        for name, tensor in named_tensors:
            if name not in params:
                raise KeyError(f"rollout engine has no parameter {name!r}; the trainer and engine models differ.")
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
            seen.add(name)
        missing = set(params) - seen
        if missing:
            raise KeyError(f"update_weights did not receive {sorted(missing)[:3]}...; every parameter must be sent.")

    def release(self) -> None:
        if self.device.type == "cuda":
            self.model.to("cpu")
            torch.cuda.empty_cache()

    def resume(self) -> None:
        if self.device.type == "cuda":
            self.model.to(self.device)
