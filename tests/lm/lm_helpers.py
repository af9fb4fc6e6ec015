"""Real text for LM tests: the asterisk English prompt transcripts, split as the corpus splits them."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import torch

from speechssl2.data.corpora.asterisk import DEFAULT_TRANSCRIPTS, read_transcripts, split_of, spoken_text
from speechssl2.registry import MODELS
from speechssl2.tokenizers import CharTokenizer

TINY_LM = {"embed_dim": 64, "num_layers": 2, "num_heads": 4, "ffn_dim": 128, "dropout": 0.1}


def asterisk_sentences(max_chars: int = 80) -> Dict[str, List[str]]:
    """``{"train": [...], "heldout": [...]}``: en_train vs en_dev + en_test prompts.

    Prompts longer than ``max_chars`` (a few menus run to 900 characters) are left out to
    keep padded batches, and the tests, small; about 92 % of the prompts remain.
    """
    out: Dict[str, List[str]] = {"train": [], "heldout": []}
    for rel, raw in sorted(read_transcripts(Path(DEFAULT_TRANSCRIPTS)).items()):
        text = spoken_text(raw)
        if 0 < len(text) <= max_chars:
            out["train" if split_of(rel) == "en_train" else "heldout"].append(text)
    return out


def char_spec(sentences: List[str]) -> dict:
    return {"name": "char", "letters": "".join(sorted(CharTokenizer.train(sentences).chars()))}


def perplexity(lm: torch.nn.Module, sentences: List[str]) -> float:
    """exp(-sum log P / tokens), sentence ends counted as tokens."""
    lm.eval()
    log_prob = float(lm.score(sentences).sum())
    tokens = sum(len(lm.tokenizer.encode(s)) + 1 for s in sentences)
    return float(torch.exp(torch.tensor(-log_prob / tokens)))


def train_lm(sentences: List[str], steps: int, spec: dict, batch_size: int = 32, seed: int = 0) -> torch.nn.Module:
    """A quick Adam loop over shuffled batches (the CLI test covers the real trainer)."""
    torch.manual_seed(seed)
    lm = MODELS.build({"name": "transformer_lm", "tokenizer": spec, **TINY_LM})
    opt = torch.optim.Adam(lm.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    lm.train()
    for _ in range(steps):
        picked = torch.randint(len(sentences), (batch_size,), generator=gen).tolist()
        loss = lm({"text": [sentences[i] for i in picked]}).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lm.eval()
