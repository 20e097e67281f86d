"""Drop-in use with a Hugging Face causal LM: last hidden state + lm_head.weight."""

import pytest
import torch

from ifrl.kernels import IGNORE_INDEX, fused_linear_logprobs

pytestmark = pytest.mark.kernels


def _batch(tok):
    texts = [
        "Write a haiku about autumn leaves, all in lowercase.",
        "List three prime numbers greater than ten, separated by commas, and nothing else.",
    ]
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def test_matches_model_log_softmax_on_real_tokens(tiny_model, impl):
    model, tok = tiny_model
    ids, attn = _batch(tok)
    labels = ids[:, 1:].clone()
    labels[attn[:, 1:] == 0] = IGNORE_INDEX  # padding positions
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=attn, use_cache=False)
        want = torch.log_softmax(out.logits[:, :-1].double(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        want = torch.where(labels == IGNORE_INDEX, 0.0, want)
        want_ent = -(torch.softmax(out.logits[:, :-1].double(), -1) * torch.log_softmax(out.logits[:, :-1].double(), -1)).sum(-1)

    hidden = model.model(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state[:, :-1]
    H = hidden.shape[-1]
    weight = model.lm_head.weight
    logp, ent = fused_linear_logprobs(hidden.reshape(-1, H), weight, labels.reshape(-1), return_entropy=True,
                                      impl=impl, chunk_bytes=4 * 16 * 4096, vocab_tile=4096)
    logp, ent = logp.view_as(labels), ent.view_as(labels)
    real = labels != IGNORE_INDEX
    assert int(real.sum()) > 20 and int((~real).sum()) > 0
    assert model.config.vocab_size > 40000  # the real SmolLM2 vocabulary, not a toy one
    torch.testing.assert_close(logp.double(), want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(ent.double()[real], want_ent[real], rtol=1e-5, atol=1e-4)

    # Gradients reach the transformer body and the LM head exactly as through the model's logits.
    loss = -(logp * real).sum() / real.sum()
    loss.backward()
    got_head = weight.grad.clone()
    got_body = model.model.layers[0].mlp.down_proj.weight.grad.clone()
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    (-(lp * real).sum() / real.sum()).backward()
    torch.testing.assert_close(got_head, weight.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_body, model.model.layers[0].mlp.down_proj.weight.grad, rtol=1e-4, atol=1e-6)
