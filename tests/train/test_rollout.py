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


def test_greedy_decode_matches_transformers_generate(tiny_model):
    """Temperature 0 is greedy and equals ``model.generate(do_sample=False)`` token for token,
    with prompts of different lengths (left padding) and one shared prefill per group."""
    from transformers import GenerationConfig

    eng, tok = _engine(tiny_model)
    prompts = PROMPTS + [[{"role": "user", "content": "Write one long sentence about the sea and the sky."}]]
    got = eng.generate(prompts, 2, SamplingParams(temperature=0.0, max_new_tokens=7))
    assert [c.prompt_index for c in got] == [0, 0, 1, 1, 2, 2]
    assert all(got[2 * i].response_ids == got[2 * i + 1].response_ids for i in range(3))
    for i, ids in enumerate(encode_prompts(tok, prompts, 1024)):
        ref = eng.model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 generation_config=GenerationConfig(do_sample=False, max_new_tokens=7,
                                                                    eos_token_id=eng.eos_ids, pad_token_id=eng.pad_id))
        expect = ref[0, len(ids):].tolist()
        cut = next((k + 1 for k, t in enumerate(expect) if t in eng.eos_ids), len(expect))
        assert got[2 * i].response_ids == expect[:cut]


def test_sampling_filters():
    """top-k keeps the k largest logits, top-p the smallest set reaching p; greedy is argmax."""
    from ifrl.rollout.hf import sample_next

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(4000, 1)
    g = torch.Generator().manual_seed(0)
    k2 = sample_next(logits, SamplingParams(temperature=1.0, top_k=2), g)
    assert set(k2.tolist()) == {0, 1}
    p = sample_next(logits, SamplingParams(temperature=1.0, top_p=0.7), g)  # 0.5 < 0.7 <= 0.8: tokens 0, 1
    assert set(p.tolist()) == {0, 1} and abs((p == 0).float().mean().item() - 0.5 / 0.8) < 0.03
    full = sample_next(logits, SamplingParams(temperature=1.0), g)
    assert set(full.tolist()) == {0, 1, 2, 3} and abs((full == 3).float().mean().item() - 0.05) < 0.015
    assert sample_next(logits[:3], SamplingParams(temperature=0.0), None).tolist() == [0, 0, 0]
