"""SentencePiece units (unigram or BPE), trained on the normalized training transcripts.

The model reserves id 0 for ``<blank>`` (SentencePiece's padding slot, a control
symbol that never appears in an encoding) and id 1 for ``<unk>``; there is no BOS/EOS.
Training uses the identity normalization rule because ``normalize_text`` already
produced the canonical spelling, and character coverage 1.0 so every training
character gets a piece. Encoding a character the model never saw is an error that
names it, as for the char tokenizer, rather than a silent ``<unk>`` target.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Literal, Optional, Sequence

import sentencepiece as spm

from speechssl2.registry import TOKENIZERS
from speechssl2.text import normalize_text
from speechssl2.tokenizers.base import BLANK, BLANK_SYMBOL, TokenizerBase

MODEL_FILE = "sentencepiece.model"
WORD_START = "\u2581"  # "▁", SentencePiece's word-start marker
UNK = 1


@TOKENIZERS.register("sentencepiece")
class SentencePieceTokenizer(TokenizerBase):
    """A trained SentencePiece model: its ``.model`` file, or that file's bytes in base64."""

    registry_key = "sentencepiece"

    def __init__(self, model_file: Optional[str] = None, model_base64: Optional[str] = None) -> None:
        if (model_file is None) == (model_base64 is None):
            raise ValueError("sentencepiece tokenizer: give exactly one of model_file and model_base64")
        if model_base64 is not None:
            self._init(base64.b64decode(model_base64), where="model_base64")
            return
        if not Path(model_file).is_file():
            raise FileNotFoundError(f"sentencepiece model {model_file} does not exist")
        self._init(Path(model_file).read_bytes(), where=model_file)

    def _init(self, proto: bytes, where: str) -> None:
        self._proto = proto
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self._symbols = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        if self._symbols[BLANK] != BLANK_SYMBOL or self._sp.unk_id() != UNK:
            raise ValueError(
                f"{where}: id 0 must be {BLANK_SYMBOL!r} and id 1 '<unk>' (train with SentencePieceTokenizer.train); "
                f"found {self._symbols[:2]!r}"
            )
        self._chars = frozenset(
            c for i, piece in enumerate(self._symbols) if not (self._sp.is_control(i) or self._sp.is_unknown(i))
            for c in piece if c != WORD_START
        )

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, model_type: Literal["unigram", "bpe"] = "unigram",
    ) -> "SentencePieceTokenizer":
        """Train on normalized ``texts``; ``vocab_size`` is an upper bound on small corpora."""
        lines = [t for t in (normalize_text(x) for x in texts) if t]
        if not lines:
            raise ValueError("sentencepiece: the training texts are empty after normalization")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type=model_type,
            pad_id=BLANK, pad_piece=BLANK_SYMBOL, unk_id=UNK, bos_id=-1, eos_id=-1,
            character_coverage=1.0, normalization_rule_name="identity", hard_vocab_limit=False,
            minloglevel=2,
        )
        tok = cls.__new__(cls)
        tok._init(model.getvalue(), where="trained model")
        return tok

    @property
    def symbols(self) -> List[str]:
        return list(self._symbols)

    @property
    def separator(self) -> Optional[str]:
        return None  # a piece starting with "▁" opens a word; nothing closes it

    def encode(self, text: str) -> List[int]:
        norm = normalize_text(text)
        unknown = sorted({c for c in norm if c != " " and c not in self._chars})
        if unknown:
            raise ValueError(f"characters {''.join(unknown)!r} are not in the sentencepiece model (text {text!r})")
        return list(self._sp.encode(norm))

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self._symbols)]
        if bad:
            raise ValueError(f"token id(s) {bad[:5]} outside the vocabulary (size {len(self._symbols)})")
        return self._sp.decode([i for i in ids if i != BLANK])

    def spell(self, word: str) -> List[str]:
        return list(self._sp.encode(word, out_type=str))

    def chars(self) -> FrozenSet[str]:
        return self._chars

    def to_spec(self) -> Dict[str, Any]:
        return {"name": self.registry_key, "model_base64": base64.b64encode(self._proto).decode("ascii")}

    def _save_args(self, out_dir: Path) -> Dict[str, Any]:
        (out_dir / MODEL_FILE).write_bytes(self._proto)
        return {"model_file": MODEL_FILE}
