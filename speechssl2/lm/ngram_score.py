"""Whole-sentence scores of a KenLM n-gram (ARPA or binary), for n-best rescoring.

A transducer beam (and a CTC beam without fusion) leaves an n-best list that a word n-gram can
re-rank: ``decoding/rescore.py`` adds ``weight * log P(sentence)``. The ``kenlm`` Python module is
not a dependency; flashlight-text's KenLM binding (installed for torchaudio's CTC decoder) reads
the same files and scores word by word. KenLM scores are log10; this returns natural logs so the
weight means the same as for the Transformer LM. Words outside the LM's vocabulary score as
``<unk>``, as KenLM does.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, List, Sequence

import torch
from torch import Tensor

UNK = "<unk>"


class NgramSentenceLM:
    """``score(texts)`` -> (N,) natural-log P(text </s> | <s>) under the n-gram at ``path``."""

    def __init__(self, path: str | Path, words: Iterable[str]) -> None:
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        if not Path(path).is_file():
            raise FileNotFoundError(f"n-gram rescoring: no LM file {path} (run the train_ngram stage)")
        self.vocab = Dictionary()
        for word in sorted(set(words) | {UNK}):
            self.vocab.add_entry(word)
        self.unk = self.vocab.get_index(UNK)
        self.lm = KenLM(str(path), self.vocab)

    def sentence(self, text: str) -> float:
        state = self.lm.start(False)
        total = 0.0
        for word in text.split():
            index = self.vocab.get_index(word) if self.vocab.contains(word) else self.unk
            state, score = self.lm.score(state, index)
            total += score
        _, end = self.lm.finish(state)
        return (total + end) * math.log(10.0)

    def score(self, texts: Sequence[str]) -> Tensor:
        return torch.tensor([self.sentence(t) for t in texts], dtype=torch.float64)


def lexicon_words(lexicon: str | Path) -> List[str]:
    """The words of a ``bin.train_ngram`` lexicon (first column)."""
    return [line.split(maxsplit=1)[0] for line in Path(lexicon).read_text().splitlines() if line.strip()]
