"""Transformers rollout backend: our own batched decode loop with a KV cache, on CPU or GPU.

The engine owns a full (unsharded) copy of the policy, like an inference server would; the
trainer pushes new weights with ``update_weights`` after each optimizer step.

Why not ``model.generate``: the n samples of a prompt share its prefix, so the prompt is
prefilled once and its KV cache repeated n times (``generate`` prefills every copy), only the
last position's logits are computed during prefill, the loop stops as soon as every row has
ended, and temperature 0 means greedy decoding (evaluation uses the same engine as training).
Sampling is seeded per call (``SamplingParams.seed`` + chunk offset) with a private
``torch.Generator``, so it neither depends on nor disturbs the trainer's global RNG stream.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ifrl.rollout.base import Completion, SamplingParams, encode_prompts


def sample_next(logits_BV: torch.Tensor, sampling: SamplingParams, gen: torch.Generator | None) -> torch.Tensor:
    """Next token per row: greedy at temperature 0, else temperature / top-k / top-p sampling."""
    if sampling.temperature <= 0:
        return logits_BV.argmax(-1)
    logits_BV = logits_BV.float() / sampling.temperature
    if sampling.top_k and sampling.top_k < logits_BV.shape[-1]:
        kth_B1 = torch.topk(logits_BV, sampling.top_k, dim=-1).values[:, -1:]
        logits_BV = logits_BV.masked_fill(logits_BV < kth_B1, float("-inf"))
    probs_BV = torch.softmax(logits_BV, dim=-1)
    if sampling.top_p < 1.0:
        sorted_BV, order_BV = probs_BV.sort(dim=-1, descending=True)
        # Drop a token when the mass before it already reaches top_p (the top token always stays).
        drop_BV = (sorted_BV.cumsum(-1) - sorted_BV) >= sampling.top_p
        sorted_BV = sorted_BV.masked_fill(drop_BV, 0.0)
        probs_BV = torch.zeros_like(probs_BV).scatter_(-1, order_BV, sorted_BV)
    return torch.multinomial(probs_BV, 1, generator=gen)[:, 0]


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
        # transformers renamed the cache argument of forward (past_key_values -> cache, 5.2x).
        import inspect

        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

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
        """n completions per prompt, grouped by prompt; temperature 0 decodes greedily."""
        prompt_ids = encode_prompts(self.tokenizer, prompts, self.max_prompt_tokens)
        per_chunk = max(1, self.batch_size // n)  # whole groups per decode batch
        out: list[Completion] = []
        for p0 in range(0, len(prompt_ids), per_chunk):
            chunk = prompt_ids[p0:p0 + per_chunk]
            gen = None
            if sampling.temperature > 0:
                gen = torch.Generator(device=self.device).manual_seed(sampling.seed * 1_000_003 + p0)
            rows = self._decode(chunk, n, sampling, gen)
            for r, toks in enumerate(rows):
                pi = p0 + r // n
                resp, reason = self._trim(toks, sampling)
                out.append(Completion(pi, list(prompt_ids[pi]), resp,
                                      self.tokenizer.decode(resp, skip_special_tokens=True), reason))
        return out

    def _decode(self, chunk: list[list[int]], n: int, sampling: SamplingParams, gen) -> list[list[int]]:
        P, W, dev = len(chunk), max(len(ids) for ids in chunk), self.device
        ids_PW = torch.full((P, W), self.pad_id, dtype=torch.long)
        attn_PW = torch.zeros((P, W), dtype=torch.long)
        for r, ids in enumerate(chunk):  # left padding: every row continues at the right edge
            ids_PW[r, W - len(ids):] = torch.tensor(ids)
            attn_PW[r, W - len(ids):] = 1
        ids_PW, attn_PW = ids_PW.to(dev), attn_PW.to(dev)
        pos_PW = (attn_PW.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids_PW, attention_mask=attn_PW, position_ids=pos_PW, use_cache=True,
                         logits_to_keep=1)
        cache = _cache_of(out)
        if n > 1:  # the n samples of a prompt share its prefix: prefill once, copy the cache
            cache.batch_repeat_interleave(n)
        logits_BV = out.logits[:, -1].repeat_interleave(n, 0)
        attn_BL = attn_PW.repeat_interleave(n, 0)
        pos_B1 = pos_PW[:, -1:].repeat_interleave(n, 0)
        B = P * n
        eos_E = torch.tensor(self.eos_ids, device=dev)
        done_B = torch.zeros(B, dtype=torch.bool, device=dev)
        len_B = torch.full((B,), sampling.max_new_tokens, dtype=torch.long, device=dev)
        steps: list[torch.Tensor] = []
        stop_check = _StopCheck(self.tokenizer, sampling.stop_strings)
        for t in range(sampling.max_new_tokens):
            tok_B = sample_next(logits_BV, sampling, gen)
            tok_B = torch.where(done_B, torch.full_like(tok_B, self.pad_id), tok_B)
            steps.append(tok_B)
            ended_B = torch.isin(tok_B, eos_E)
            if stop_check.active:
                ended_B |= stop_check(steps, done_B)
            len_B = torch.where(ended_B & ~done_B, torch.full_like(len_B, t + 1), len_B)
            done_B |= ended_B
            if bool(done_B.all()) or t == sampling.max_new_tokens - 1:
                break
            attn_BL = torch.cat([attn_BL, torch.ones((B, 1), dtype=attn_BL.dtype, device=dev)], 1)
            pos_B1 = pos_B1 + 1
            out = self.model(input_ids=tok_B[:, None], attention_mask=attn_BL, position_ids=pos_B1,
                             use_cache=True, **{self._cache_kw: cache})
            cache = _cache_of(out)
            logits_BV = out.logits[:, -1]
        if not steps:
            return [[] for _ in range(B)]
        # Cut each row where it ended: the pad tokens fed after the end are not part of it.
        return [row[:k] for row, k in zip(torch.stack(steps, 1).tolist(), len_B.tolist())]

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


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class _StopCheck:
    """Marks rows whose recent tokens spell a stop string (the exact cut is made by ``_trim``)."""

    def __init__(self, tokenizer, stop_strings):
        self.tokenizer, self.stops = tokenizer, list(stop_strings or [])
        # A token spells at least one character, so this many trailing tokens cover any stop string.
        self.window = max((len(s) for s in self.stops), default=0) + 2
        self.active = bool(self.stops)

    def __call__(self, steps: list[torch.Tensor], done_B: torch.Tensor) -> torch.Tensor:
        tail = torch.stack(steps[-self.window:], 1).tolist()
        hit = [not d and any(s in self.tokenizer.decode(row, skip_special_tokens=True) for s in self.stops)
               for row, d in zip(tail, done_B.tolist())]
        return torch.tensor(hit, dtype=torch.bool, device=done_B.device)
