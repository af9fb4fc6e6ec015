"""N-gram LMs with KenLM's ``lmplz`` and ``build_binary`` (built by ``tools/install_kenlm.sh``).

Two kinds of training text, matching the two CTC beam-search modes
(``speechssl2.decoding.ctc_beam``):

* ``unit="word"``: normalized transcripts, one per line -> a word LM for lexicon search;
* ``unit="token"``: each transcript spelled as space-separated tokenizer symbols
  (``h e l l o | ...``) -> a token LM for lexicon-free search.

The binaries are looked up in ``$KENLM_BIN``, then ``tools/kenlm/bin`` of the
repository, then ``$PATH``; :func:`find_kenlm` returns None when they are absent so a
recipe stage can skip with a clear message instead of failing.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Literal, Optional

from speechssl2.text import normalize_text
from speechssl2.tokenizers.base import TokenizerBase

log = logging.getLogger(__name__)
REPO_BIN = Path(__file__).resolve().parents[2] / "tools" / "kenlm" / "bin"
BINARIES = ("lmplz", "build_binary")
Unit = Literal["word", "token"]


def find_kenlm() -> Optional[Path]:
    """The directory holding both ``lmplz`` and ``build_binary``, or None."""
    candidates = [Path(os.environ["KENLM_BIN"])] if os.environ.get("KENLM_BIN") else []
    candidates.append(REPO_BIN)
    on_path = shutil.which("lmplz")
    if on_path:
        candidates.append(Path(on_path).parent)
    for d in candidates:
        if all(os.access(d / b, os.X_OK) for b in BINARIES):
            return d
    return None


def lm_corpus_lines(texts: Iterable[str], unit: Unit, tokenizer: Optional[TokenizerBase] = None) -> Iterable[str]:
    """Training lines for ``unit`` (module doc); empty transcripts are skipped."""
    if unit == "token" and tokenizer is None:
        raise ValueError("a token-level n-gram needs the tokenizer whose symbols it models")
    for text in texts:
        norm = normalize_text(text)
        if not norm:
            continue
        if unit == "word":
            yield norm
        else:
            yield " ".join(tokenizer.symbols[i] for i in tokenizer.encode(norm))  # type: ignore[union-attr]


def build_ngram(
    lines: Iterable[str], out_dir: str | os.PathLike, order: int = 3, binary: bool = True,
    prune: Optional[list[int]] = None, memory: str = "20%", kenlm_bin: Optional[Path] = None,
) -> Path:
    """Estimate an ``order``-gram (modified Kneser-Ney) on ``lines``; return the LM path.

    Writes ``corpus.txt``, ``lm.arpa`` and, with ``binary``, ``lm.bin`` into ``out_dir``.
    ``--discount_fallback`` lets lmplz estimate on tiny corpora (our demos), where the
    Kneser-Ney discounts cannot be computed from the count-of-counts.
    """
    bin_dir = kenlm_bin or find_kenlm()
    if bin_dir is None:
        raise FileNotFoundError("KenLM binaries not found: run tools/install_kenlm.sh or set KENLM_BIN")
    if order < 2:
        raise ValueError(f"n-gram order must be at least 2 (flashlight's KenLM needs a bigram), got {order}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = out / "corpus.txt"
    with open(corpus, "w", encoding="utf-8") as f:
        count = sum(1 for line in lines if f.write(line + "\n"))
    if count == 0:
        raise ValueError(f"{corpus}: no training text for the n-gram")
    arpa = out / "lm.arpa"
    cmd = [str(bin_dir / "lmplz"), "-o", str(order), "-S", memory, "-T", str(out),
           "--text", str(corpus), "--arpa", str(arpa), "--discount_fallback"]
    if prune:
        cmd += ["--prune", *map(str, prune)]
    run_logged(cmd, out / "lmplz.log")
    if not binary:
        return arpa
    lm_bin = out / "lm.bin"
    run_logged([str(bin_dir / "build_binary"), str(arpa), str(lm_bin)], out / "build_binary.log")
    return lm_bin


def run_logged(cmd: list[str], log_file: Path) -> None:
    log.info("running %s", " ".join(cmd))
    with open(log_file, "w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); see {log_file}:\n" + "\n".join(tail))
