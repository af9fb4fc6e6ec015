"""Tokenizers (registered in TOKENIZERS): characters with word boundary, SentencePiece.

``load_tokenizer(dir)`` rebuilds one saved with ``tokenizer.save(dir)``. Id 0 is the
CTC blank for all of them.
"""
from speechssl2.tokenizers.base import BLANK, TokenizerBase, load_tokenizer
from speechssl2.tokenizers.char import CharTokenizer
from speechssl2.tokenizers.sentencepiece import SentencePieceTokenizer

__all__ = ["BLANK", "CharTokenizer", "SentencePieceTokenizer", "TokenizerBase", "load_tokenizer"]
