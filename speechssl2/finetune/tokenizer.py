"""Tokenizer plumbing shared by the fine-tuning models and the Transformer LM.

The tokenizers themselves live in ``speechssl2.tokenizers`` (registered in TOKENIZERS);
a model config names one either as a registry spec (``{"name": "char", ...}``) or as the
directory a trained tokenizer was saved to. Id 0 is the CTC / transducer blank, which no
transcript ever contains, so the LM reuses it as its sentence boundary symbol.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor

from speechssl2.registry import TOKENIZERS

BLANK = 0
TokenizerSpec = Union[Mapping[str, Any], str]


class Tokenizer(Protocol):
    """What the models need from a tokenizer."""

    vocab_size: int

    def encode(self, text: str) -> List[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def build_tokenizer(spec: TokenizerSpec) -> Tokenizer:
    """A registry spec builds a tokenizer; a string is a directory written by ``tokenizer.save``."""
    if isinstance(spec, Mapping):
        return TOKENIZERS.build(spec)
    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(f"tokenizer directory {path} does not exist (expected one written by tokenizer.save)")
    from speechssl2.tokenizers import load_tokenizer

    return load_tokenizer(path)


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], ids: Sequence[str]) -> List[List[int]]:
    """Token ids of every transcript.

    A transcript the tokenizer cannot encode, or one that encodes to the blank id, is an
    error naming the utterance: training on it silently would corrupt the targets.
    """
    seqs: List[List[int]] = []
    for utt, text in zip(ids, texts):
        try:
            seq = list(tokenizer.encode(text))
        except Exception as err:
            raise ValueError(f"utterance {utt!r}: cannot tokenize transcript {text!r}: {err}") from err
        if BLANK in seq:
            raise ValueError(f"utterance {utt!r}: transcript {text!r} encodes to the blank id {BLANK}")
        seqs.append(seq)
    return seqs


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str], ids: Sequence[str]) -> Tuple[Tensor, Tensor]:
    """Transcripts as ``(B, U)`` targets padded with blank, and their ``(B,)`` lengths."""
    seqs = encode_texts(tokenizer, texts, ids)
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    targets = torch.full((len(seqs), max([0, *map(len, seqs)])), BLANK, dtype=torch.long)
    for i, seq in enumerate(seqs):
        targets[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return targets, lengths  # (B, U), (B,)
