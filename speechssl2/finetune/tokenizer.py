"""Tokenizer plumbing shared by the fine-tuning models and the Transformer LM.

The tokenizers themselves live in ``speechssl2.tokenizers`` (registered in TOKENIZERS);
a model config names one either as a registry spec (``{"name": "char", ...}``) or as the
directory a trained tokenizer was saved to. Id 0 is the CTC / transducer blank, which no
transcript ever contains, so the LM reuses it as its sentence boundary symbol.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Sequence, Tuple, Union

import torch
from torch import Tensor

from speechssl2.registry import TOKENIZERS
from speechssl2.tokenizers import BLANK, TokenizerBase, load_tokenizer

TokenizerSpec = Union[Mapping[str, Any], str]


def build_tokenizer(spec: TokenizerSpec) -> TokenizerBase:
    """A registry spec builds a tokenizer; a string is a directory written by ``tokenizer.save``."""
    if isinstance(spec, Mapping):
        return TOKENIZERS.build(spec)
    return load_tokenizer(spec)


def encode_texts(tokenizer: TokenizerBase, texts: Sequence[str], ids: Sequence[str]) -> List[List[int]]:
    """Token ids of every transcript; one the tokenizer cannot encode is an error naming the utterance."""
    seqs: List[List[int]] = []
    for utt, text in zip(ids, texts):
        try:
            seq = list(tokenizer.encode(text))
        except Exception as err:
            raise ValueError(f"utterance {utt!r}: cannot tokenize transcript {text!r}: {err}") from err
        seqs.append(seq)
    return seqs


def encode_batch(tokenizer: TokenizerBase, texts: Sequence[str], ids: Sequence[str]) -> Tuple[Tensor, Tensor]:
    """Transcripts as ``(B, U)`` targets padded with blank, and their ``(B,)`` lengths."""
    seqs = encode_texts(tokenizer, texts, ids)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    targets = torch.full((len(seqs), max([0, *map(len, seqs)])), BLANK, dtype=torch.long)
    for i, seq in enumerate(seqs):
        targets[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return targets, lengths  # (B, U), (B,)
