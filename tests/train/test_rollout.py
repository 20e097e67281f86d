"""The transformers rollout engine: grouping, seeding, EOS / stop strings, weight updates."""

import copy

import torch

from ifrl.rollout import SamplingParams, encode_prompts, make_engine

PROMPTS = [[{"role": "user", "content": "Name a fruit."}], [{"role": "user", "content": "Say hi to Bob."}]]


def _engine(tiny_model, **kw):
    model, tok = tiny_model
    return make_engine("hf", copy.deepcopy(model), tok, batch_size=3, **kw), tok


def test_grouped_seeded_and_trimmed(tiny_model):
    eng, tok = _engine(tiny_model)
    sp = SamplingParams(temperature=1.0, top_k=50, max_new_tokens=6, seed=7)
    a = eng.generate(PROMPTS, 3, sp)
    assert [c.prompt_index for c in a] == [0, 0, 0, 1, 1, 1]
    b = eng.generate(PROMPTS, 3, sp)
    assert [c.response_ids for c in a] == [c.response_ids for c in b]
    c = eng.generate(PROMPTS, 3, SamplingParams(temperature=1.0, top_k=50, max_new_tokens=6, seed=8))
    assert [x.response_ids for x in a] != [x.response_ids for x in c]
    for comp in a:
        assert 1 <= len(comp.response_ids) <= 6
        assert comp.prompt_ids == encode_prompts(tok, [PROMPTS[comp.prompt_index]], 1024)[0]
        assert comp.text == tok.decode(comp.response_ids, skip_special_tokens=True)
        assert comp.finish_reason in ("eos", "length")


def test_eos_ends_the_response_and_stop_strings_cut(tiny_model):
    eng, tok = _engine(tiny_model)
    greedy = SamplingParams(max_new_tokens=8, seed=0, top_k=1)
    free = eng.generate(PROMPTS[:1], 1, greedy)[0]
    assert free.finish_reason == "length" and len(free.response_ids) == 8
    # Declare the third greedy token an end-of-sequence token: the response must end right there.
    model, _ = tiny_model
    m = copy.deepcopy(model)
    m.generation_config.eos_token_id = [free.response_ids[2]]
    eng_eos = make_engine("hf", m, tok)
    out = eng_eos.generate(PROMPTS[:1], 1, greedy)[0]
    first = free.response_ids.index(free.response_ids[2])
    assert out.response_ids == free.response_ids[:first + 1] and out.finish_reason == "eos"
    # A stop string cuts the response after the token that completes it.
    stop = tok.decode(free.response_ids[3:4], skip_special_tokens=True).strip()
    if stop and stop not in tok.decode(free.response_ids[:3], skip_special_tokens=True):
        cut = eng.generate(PROMPTS[:1], 1, SamplingParams(max_new_tokens=8, seed=0, top_k=1, stop_strings=[stop]))[0]
        assert stop in cut.text and cut.finish_reason == "stop" and cut.response_ids == free.response_ids[:4]


def test_update_weights_changes_samples(tiny_model):
    eng, _ = _engine(tiny_model)
    sp = SamplingParams(max_new_tokens=5, seed=1, top_k=1)
    before = eng.generate(PROMPTS, 1, sp)
    g = torch.Generator().manual_seed(0)
    new = {n: p + torch.randn(p.shape, generator=g) * 0.5 for n, p in eng.model.named_parameters()}
    eng.update_weights(new.items())
    assert all(torch.equal(p, new[n]) for n, p in eng.model.named_parameters())
    after = eng.generate(PROMPTS, 1, sp)
    assert [c.response_ids for c in before] != [c.response_ids for c in after]
