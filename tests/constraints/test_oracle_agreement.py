"""Verdict agreement with the official IFEval checker (lm-eval's copy) on the 541 GPT-4
responses and on a seeded fuzzed variant set, strict and loose."""

import random

import pytest

from ifrl.constraints import verify_batch, verify_reference

# IFEval draws a random letter for these rows (non-letter `letter` kwarg); ifrl counts the
# given character, so their official verdicts are not comparable.
RANDOM_LETTER_KEYS = {1122, 1129}


def _cols(rows):
    return [r["response"] for r in rows], [r["instruction_id_list"] for r in rows], [r["kwargs"] for r in rows]


def _mismatches(rows, got, want):
    bad = []
    for r, g, w in zip(rows, got, want):
        for iid, a, b in zip(r["instruction_id_list"], g, w):
            if r.get("key") in RANDOM_LETTER_KEYS and iid == "keywords:letter_frequency":
                continue
            if a != b:
                bad.append((r.get("key"), iid, a, b))
    return bad


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_ifeval_541_agree_with_official(ifeval_rows, official, mode):
    resp, ids, kws = _cols(ifeval_rows)
    want = official.official_verdicts(ifeval_rows, resp, mode)
    got = verify_batch(resp, ids, kws, mode=mode)
    ref = verify_reference(resp, ids, kws, mode=mode)
    assert sum(len(v) for v in got) == 834
    assert _mismatches(ifeval_rows, got, want) == []
    assert _mismatches(ifeval_rows, ref, want) == []
    skipped = sum(iid == "keywords:letter_frequency" for r in ifeval_rows if r["key"] in RANDOM_LETTER_KEYS
                  for iid in r["instruction_id_list"])
    assert skipped == 2  # 832 of 834 instructions compared


def fuzz(text: str, rng: random.Random) -> str:
    """One random edit of the kinds that flip IFEval verdicts."""
    ops = [
        lambda t: t.upper(), lambda t: t.lower(), lambda t: t.swapcase(),
        lambda t: t.replace(",", ""), lambda t: t.replace(" ", ", ", 3),
        lambda t: "\n".join("* " + ln if ln.strip() else ln for ln in t.split("\n")),
        lambda t: "\n".join("- " + ln if i % 2 else ln for i, ln in enumerate(t.split("\n"))),
        lambda t: t.replace(". ", ".\n\n", 4), lambda t: t.replace("\n\n", "\n***\n"),
        lambda t: '"' + t + '"', lambda t: t[: max(1, len(t) // rng.randint(2, 9))],
        lambda t: t.replace("\n", "\r\n"), lambda t: t + "\n\nP.S. thanks", lambda t: t + " 😀 ñandú",
        lambda t: "<<A Title>>\n" + t, lambda t: t.replace("*", ""), lambda t: t + "\n******\n" + t[:200],
        lambda t: t.replace(".", "?", 5), lambda t: t.replace("e", "E"), lambda t: t.strip().split("\n")[0],
        lambda t: "```json\n{\"a\": 1}\n```" if rng.random() < 0.5 else t + " Dr. Smith arrived. U.S. gov. E.g. this.",
    ]
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(ops)(text)
    return text


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_fuzzed_variants_agree_with_official(ifeval_rows, official, mode):
    rng = random.Random(1234 if mode == "strict" else 4321)
    rows = []
    for r in rng.sample(ifeval_rows, 200):
        if r["key"] in RANDOM_LETTER_KEYS:
            continue
        rows.append({**r, "response": fuzz(r["response"], rng)})
    resp, ids, kws = _cols(rows)
    want = official.official_verdicts(rows, resp, mode)
    got = verify_batch(resp, ids, kws, mode=mode)
    assert _mismatches(rows, got, want) == []
    # the fuzz must actually move verdicts, else it tests nothing
    by_key = {r["key"]: r for r in ifeval_rows}
    orig = verify_batch([by_key[r["key"]]["response"] for r in rows], ids, kws, mode=mode)
    flipped = sum(a != b for g, o in zip(got, orig) for a, b in zip(g, o))
    assert flipped >= 30
