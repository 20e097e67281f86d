import json

import pytest
import torch

from ifrl.models import ModelLoadError, load_model, load_tokenizer, smollm2_dir


def _greedy_answer(model, tok, question: str, max_new_tokens: int = 30) -> str:
    enc = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def test_smollm2_answers_paris(smollm2):
    model, tok = smollm2
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    answer = _greedy_answer(model, tok, "What is the capital of France?")
    assert "Paris" in answer, answer


def test_smollm2_cache_is_plain_safetensors(smollm2):
    d = smollm2_dir()
    cfg = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in cfg  # later loads must not go through the GGUF path
    assert (d / "model.safetensors").stat().st_size > 400e6  # fp32 weights, not a pointer


@pytest.mark.parametrize("name,arch", [("tiny-random-llama", "LlamaForCausalLM"),
                                       ("tiny-random-qwen2", "Qwen2ForCausalLM")])
def test_tiny_models_are_seeded_and_use_real_tokenizer(smollm2_tokenizer, name, arch):
    m1, tok = load_model(name, seed=7)
    m2, _ = load_model(name, seed=7)
    m3, _ = load_model(name, seed=8)
    assert type(m1).__name__ == arch
    assert len(tok) == 49152 and tok.chat_template and "<|im_start|>" in tok.chat_template
    sd1, sd2, sd3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert not all(torch.equal(sd1[k], sd3[k]) for k in sd1)
    ids = tok("hello world", return_tensors="pt")["input_ids"]
    logits = m1(ids).logits
    assert logits.shape == (1, ids.shape[1], 49152) and torch.isfinite(logits).all()


def test_building_a_tiny_model_leaves_global_rng_alone(smollm2_tokenizer):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    load_model("tiny-random-llama", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_local_folder_roundtrip(tmp_path, smollm2_tokenizer):
    m, tok = load_model("tiny-random-qwen2", seed=3)
    m.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    m2, tok2 = load_model(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    m3, _ = load_model(tmp_path / "m" / "model.safetensors")  # a weights file resolves to its folder
    assert type(m3).__name__ == "Qwen2ForCausalLM"
    assert load_tokenizer(tmp_path / "m").encode("abc") == tok.encode("abc")


@pytest.mark.parametrize("bad,needle", [
    ("no-such-model", "not a known name"),
    ("/definitely/missing.safetensors", "does not exist"),
])
def test_bad_model_names_say_how_to_fix(bad, needle):
    with pytest.raises(ModelLoadError, match=needle):
        load_model(bad)


def test_folder_without_config_is_rejected(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="config.json is missing"):
        load_model(tmp_path)
