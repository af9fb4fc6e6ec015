"""CTC beam search with n-gram shallow fusion (torchaudio ``ctc_decoder`` over flashlight-text).

Two modes, chosen by whether a lexicon is given:

* **lexicon**: the beam only spells words of the lexicon (``word tok tok ...`` lines,
  see :func:`write_lexicon`); the KenLM model (ARPA or binary) is a *word* n-gram.
  Score = acoustic + ``lm_weight`` * LM + ``word_score`` per word.
* **lexicon-free**: any token sequence; the KenLM model is a *token* n-gram whose
  vocabulary is the tokenizer's symbols (``speechssl2.lm.ngram`` writes its training
  text as space-separated tokens). The word-boundary token plays flashlight's
  "silence" role, so ``word_score`` is added at each boundary.

Without ``lm`` the search is a plain CTC prefix beam search.

For a char tokenizer the silence is the word separator ``|``. SentencePiece has no
separator (a piece starting with ``▁`` opens a word), so ``<unk>`` takes the silence
slot: a trained model never emits it, and the lexicon spells words with pieces.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional

import torch
from torch import Tensor

from speechssl2.config import atomic_write_text
from speechssl2.decoding.ctc import check_log_probs
from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.tokenizers.base import BLANK, BLANK_SYMBOL, TokenizerBase

log = logging.getLogger(__name__)


def silence_token(tokenizer: TokenizerBase) -> str:
    """The token flashlight treats as silence / word boundary (module doc)."""
    return tokenizer.separator if tokenizer.separator is not None else "<unk>"


def write_lexicon(words: Iterable[str], tokenizer: TokenizerBase, path: str | os.PathLike) -> int:
    """Write ``word tok tok ...`` lines for every spellable word; return how many.

    Words with characters the tokenizer lacks cannot be spelled: they are left out and
    named in a warning, never silently.
    """
    lines, skipped = [], []
    for word in sorted(set(words)):
        if set(word) - tokenizer.chars():
            skipped.append(word)
            continue
        lines.append(f"{word} {' '.join(tokenizer.spell(word))}\n")
    if skipped:
        log.warning("lexicon %s: %d word(s) with characters outside the tokenizer left out, e.g. %s",
                    path, len(skipped), skipped[:10])
    if not lines:
        raise ValueError(f"lexicon {path}: no word can be spelled with the tokenizer")
    atomic_write_text(Path(path), "".join(lines))
    return len(lines)


class CTCBeamSearch:
    """Batched CTC beam search; ``__call__(log_probs (B, T, V), lengths (B,))`` -> n-best lists."""

    def __init__(
        self, tokenizer: TokenizerBase, lexicon: Optional[str] = None, lm: Optional[str] = None,
        lm_weight: float = 2.0, word_score: float = 0.0, beam_size: int = 50,
        beam_threshold: float = 25.0, nbest: int = 1,
    ) -> None:
        from torchaudio.models.decoder import ctc_decoder  # needs flashlight-text

        for name, path in (("lexicon", lexicon), ("lm", lm)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"CTC beam search: {name} file {path} does not exist")
        if tokenizer.symbols[BLANK] != BLANK_SYMBOL:
            raise ValueError(f"CTC beam search: token 0 must be {BLANK_SYMBOL!r}, got {tokenizer.symbols[0]!r}")
        self.tokenizer = tokenizer
        self.lexicon = lexicon
        sil = silence_token(tokenizer)
        self._sil = tokenizer.symbols.index(sil)
        self._sil_is_separator = tokenizer.separator is not None
        options = dict(
            tokens=tokenizer.symbols, lm=lm, nbest=nbest, beam_size=beam_size, beam_threshold=beam_threshold,
            lm_weight=lm_weight, blank_token=BLANK_SYMBOL, sil_token=sil, unk_word="<unk>",
        )
        if lexicon is not None:
            self._decoder = ctc_decoder(lexicon=lexicon, word_score=word_score, **options)
            return
        # Lexicon-free: torchaudio has no word score here; the boundary ("silence") score
        # plays its part. The LM dictionary must list the tokens in id order: flashlight
        # scores the LM with the token id, and torchaudio's default dictionary reorders
        # the tokens, which silently pairs each token with another token's LM entry.
        with tempfile.TemporaryDirectory() as tmp:
            lm_dict = Path(tmp) / "tokens.txt"
            lm_dict.write_text("".join(f"{t}\n" for t in tokenizer.symbols), encoding="utf-8")
            self._decoder = ctc_decoder(
                lexicon=None, lm_dict=str(lm_dict) if lm is not None else None, sil_score=word_score, **options
            )

    @torch.no_grad()
    def __call__(self, log_probs: Tensor, lengths: Tensor) -> List[List[Hypothesis]]:
        check_log_probs(log_probs, lengths)
        emissions = log_probs.detach().float().cpu().contiguous()  # (B, T, V)
        results = self._decoder(emissions, lengths.cpu().to(torch.int32))
        return [[self._hypothesis(h) for h in nbest] for nbest in results]

    def best(self, log_probs: Tensor, lengths: Tensor) -> List[Hypothesis]:
        """The top hypothesis per utterance (the ``Search`` signature of ``decoding.runner``)."""
        return [nbest[0] for nbest in self(log_probs, lengths)]

    def _hypothesis(self, hyp: object) -> Hypothesis:
        tokens: List[int] = [int(t) for t in hyp.tokens]  # type: ignore[attr-defined]  # blanks already gone
        if self._sil_is_separator:  # flashlight opens (and may close) a path with extra silences
            tokens = [t for i, t in enumerate(tokens) if t != self._sil or (i > 0 and tokens[i - 1] != self._sil)]
            tokens = tokens[1:] if tokens[:1] == [self._sil] else tokens
        else:  # the borrowed <unk> slot is no token at all
            tokens = [t for t in tokens if t != self._sil]
        words = hyp.words  # type: ignore[attr-defined]
        text = " ".join(words) if self.lexicon is not None else self.tokenizer.decode(tokens)
        return Hypothesis(tuple(tokens), float(hyp.score), text)  # type: ignore[attr-defined]
