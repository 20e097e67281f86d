"""Batch entry points for Punkt sentence spans (see ``punkt.py`` for the algorithm)."""

from __future__ import annotations

import numpy as np

from ifrl.constraints.text.punkt import sentence_spans_ref


def sentence_spans_batch(texts: list[str]) -> list[list[tuple[int, int]]]:
    return [sentence_spans_ref(t) for t in texts]


def count_sentences_batch(texts: list[str]) -> np.ndarray:
    return np.array([len(s) for s in sentence_spans_batch(texts)], dtype=np.int64)
