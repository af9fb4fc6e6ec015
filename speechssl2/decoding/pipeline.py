"""Decode a cut manifest with a fine-tuned CTC or transducer checkpoint, then score it.

One function per choice, composed by :func:`decode`:

* the **search** follows the model and ``decoder``: CTC greedy, CTC beam (optionally
  with KenLM shallow fusion from a ``bin.train_ngram`` directory, lexicon or
  lexicon-free), transducer greedy, transducer beam (batched, optionally fused with a
  Transformer LM);
* **n-best rescoring** with a Transformer LM applies to any beam search;
* the acoustic model runs batch by batch inside ``run_decoding``, so the reported RTF
  covers the model and the search.

The output directory gets ``text`` (hypotheses), ``ref`` (references), the scoring
files of ``speechssl2.scoring.report`` and a ``result.json`` carrying the experiment
description, the decoder, the LM and the RTF, which ``bin.results`` collects.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Tuple

import torch
from torch import Tensor, nn

from speechssl2.data.loader import make_dataloader
from speechssl2.decoding.ctc import ctc_greedy
from speechssl2.decoding.ctc_beam import CTCBeamSearch
from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.decoding.rescore import SentenceLM, rescore_nbest
from speechssl2.decoding.runner import DecodeBatch, DecodeRun, run_decoding
from speechssl2.decoding.transducer import greedy_search
from speechssl2.decoding.transducer_batch import batch_beam_search
from speechssl2.lm.ngram_score import NgramSentenceLM, lexicon_words
from speechssl2.scoring.kaldi_text import read_transcripts, write_text
from speechssl2.scoring.report import ExperimentMeta, ScoreReport, score_texts, write_report
from speechssl2.stage import file_sig
from speechssl2.train.checkpoint import load_trained_model

log = logging.getLogger(__name__)
NBestSearch = Callable[[Tensor, Tensor], List[List[Hypothesis]]]
FINETUNED = ("ctc", "transducer")


@dataclass
class DecodeConfig:
    checkpoint: str  # fine-tuning checkpoint (model.name ctc or transducer)
    cuts: str  # cut manifest to decode; cuts with a transcript are scored
    out_dir: str  # text, ref, wer.txt, result.json and the logs go here
    decoder: Literal["greedy", "beam"] = "greedy"  # search: greedy (best path) or beam
    beam_size: int = 20  # hypotheses kept per step in beam search
    beam_threshold: float = 25.0  # CTC beam: prune paths this far below the best
    nbest: int = 1  # hypotheses kept per utterance (rescoring wants more than one)
    ngram: bool = False  # CTC beam: shallow fusion with <lm_dir>/lm.bin
    lm_dir: Optional[str] = None  # bin.train_ngram output directory
    lexicon: bool = True  # spell words of <lm_dir>/lexicon.txt; false: token LM, lexicon-free
    lm_weight: float = 2.0  # CTC beam: weight of the n-gram LM score
    word_score: float = 0.0  # word insertion bonus
    fusion_lm: Optional[str] = None  # transducer beam: Transformer LM checkpoint fused per token
    fusion_weight: float = 0.3  # weight of the fusion_lm score
    rescore_lm: Optional[str] = None  # Transformer LM checkpoint for n-best rescoring
    rescore_ngram: bool = False  # or rescore the n-best with <lm_dir>/lm.bin over <lm_dir>/lexicon.txt words
    rescore_weight: float = 0.5  # weight of the rescoring LM's natural-log sentence score
    max_duration: float = 60.0  # seconds of audio per batch
    sample_rate: int = 16000  # audio is resampled to this rate on loading
    device: str = "auto"  # auto: cuda when available
    meta: ExperimentMeta = field(default_factory=ExperimentMeta)  # decoder / lm left "-" are filled in


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lm_file(lm_dir: Path) -> Optional[Path]:
    """The n-gram a train_ngram stage left in ``lm_dir``: lm.bin (KenLM binary) or lm.arpa."""
    return next((p for p in (lm_dir / "lm.bin", lm_dir / "lm.arpa") if p.is_file()), None)


def ngram_paths(cfg: DecodeConfig) -> Tuple[Optional[str], Optional[str]]:
    """(lm, lexicon) for CTC fusion; (None, None) with a warning when the LM stage was skipped."""
    if not cfg.ngram:
        return None, None
    if cfg.lm_dir is None:
        raise ValueError("decode: ngram=true needs lm_dir (the bin.train_ngram output directory)")
    lm_dir = Path(cfg.lm_dir)
    lm = lm_file(lm_dir)
    if lm is None:
        log.warning("no n-gram LM in %s (KenLM missing or the LM stage skipped): beam search without an LM", lm_dir)
        return None, None
    lexicon = lm_dir / "lexicon.txt"
    if cfg.lexicon and not lexicon.is_file():
        raise FileNotFoundError(f"decode: lexicon=true but {lexicon} does not exist (train_ngram with a tokenizer)")
    return str(lm), str(lexicon) if cfg.lexicon else None


def ctc_search(model: nn.Module, cfg: DecodeConfig, lm: Optional[str], lexicon: Optional[str]) -> NBestSearch:
    tok = model.tokenizer
    if cfg.decoder == "greedy":
        return lambda lp, n: [[h] for h in ctc_greedy(lp, n, tok.decode)]
    return CTCBeamSearch(tok, lexicon=lexicon, lm=lm, lm_weight=cfg.lm_weight, word_score=cfg.word_score,
                         beam_size=cfg.beam_size, beam_threshold=cfg.beam_threshold, nbest=cfg.nbest)


def transducer_search(model: nn.Module, cfg: DecodeConfig, fusion: Optional[nn.Module]) -> NBestSearch:
    tok = model.tokenizer
    if cfg.decoder == "greedy":
        def greedy(enc: Tensor, lengths: Tensor) -> List[List[Hypothesis]]:
            ids = greedy_search(model.predictor, model.joiner, enc, lengths)
            return [[Hypothesis(tuple(seq), 0.0, tok.decode(seq))] for seq in ids]
        return greedy

    def beam(enc: Tensor, lengths: Tensor) -> List[List[Hypothesis]]:
        nbests = batch_beam_search(model.predictor, model.joiner, enc, lengths, beam=cfg.beam_size, lm=fusion,
                                   lm_weight=cfg.fusion_weight)
        return [[h.with_text(tok.decode(h.tokens)) for h in hyps[: cfg.nbest]] for hyps in nbests]
    return beam


def rescoring_lm(cfg: DecodeConfig, device: torch.device) -> Optional[SentenceLM]:
    """The sentence LM of n-best rescoring: the Transformer LM checkpoint, or the n-gram of lm_dir."""
    if cfg.rescore_lm is not None:
        return load_trained_model(cfg.rescore_lm, ("transformer_lm",))[0].to(device)
    if not cfg.rescore_ngram:
        return None
    lm_dir = Path(cfg.lm_dir or "")
    lm = lm_file(lm_dir)
    if lm is None:
        raise FileNotFoundError(f"decode: rescore_ngram=true but {lm_dir} holds no lm.bin or lm.arpa (train_ngram)")
    lexicon = lm_dir / "lexicon.txt"
    if not lexicon.is_file():
        raise FileNotFoundError(f"decode: rescore_ngram=true needs {lexicon} (the words the n-gram knows)")
    return NgramSentenceLM(lm, lexicon_words(lexicon))


def with_rescoring(search: NBestSearch, lm: SentenceLM, weight: float) -> Callable[[Tensor, Tensor], List[Hypothesis]]:
    """The 1-best after re-ranking each n-best list with ``weight`` * log P_lm(text)."""
    def best(emissions: Tensor, lengths: Tensor) -> List[Hypothesis]:
        nbests = search(emissions, lengths)
        ranked = rescore_nbest(nbests, lm, weight)
        return [next(h for h in nbest if h.text == top[0].text) for nbest, top in zip(nbests, ranked)]
    return best


def emissions(model: nn.Module, loader: Any, device: torch.device) -> Iterator[DecodeBatch]:
    """Run the acoustic model batch by batch (CTC log-probs or transducer encoder output)."""
    run = model.log_probs if hasattr(model, "log_probs") else model.encode
    with torch.inference_mode():
        for batch in loader:
            audio, lens = batch["audio"].to(device), batch["audio_lens"].to(device)
            out, frames = run(audio, lens)
            yield DecodeBatch(batch["ids"], out, frames, float(batch["audio_lens"].sum()) / batch["sample_rate"])


def describe(cfg: DecodeConfig, kind: str, lm: Optional[str], lexicon: Optional[str]) -> Dict[str, str]:
    """The decoder and LM columns of RESULTS.md."""
    decoder = f"{kind} {cfg.decoder}" + (f" (beam {cfg.beam_size})" if cfg.decoder == "beam" else "")
    lms = []
    if lm is not None:
        # The content digest tells two builds of the same LM directory apart in RESULTS.md.
        lms.append(f"{Path(cfg.lm_dir or '').name}@{file_sig(Path(lm))[2][:8]} "
                   f"{'lexicon' if lexicon else 'lexicon-free'} x{cfg.lm_weight:g}")
    if cfg.fusion_lm is not None:
        lms.append(f"TLM fusion x{cfg.fusion_weight:g}")
    if cfg.rescore_lm is not None:
        lms.append(f"TLM rescoring x{cfg.rescore_weight:g}")
    if cfg.rescore_ngram:
        path = lm_file(Path(cfg.lm_dir or ""))
        lms.append(f"{Path(cfg.lm_dir or '').name}@{file_sig(path)[2][:8]} rescoring x{cfg.rescore_weight:g}")
    return {"decoder": decoder, "lm": " + ".join(lms) or "none"}


def check_config(cfg: DecodeConfig, kind: str) -> None:
    rescoring = "rescore_lm" if cfg.rescore_lm is not None else "rescore_ngram" if cfg.rescore_ngram else None
    if rescoring and (cfg.decoder != "beam" or cfg.nbest < 2):
        raise ValueError(f"decode: {rescoring} needs decoder=beam and nbest >= 2 "
                         "(a 1-best list has nothing to re-rank)")
    if cfg.rescore_lm is not None and cfg.rescore_ngram:
        raise ValueError("decode: rescore with one LM: rescore_lm (Transformer) or rescore_ngram, not both")
    if cfg.rescore_ngram and cfg.lm_dir is None:
        raise ValueError("decode: rescore_ngram=true needs lm_dir (the bin.train_ngram output directory)")
    if kind == "transducer" and cfg.ngram:
        raise ValueError("decode: n-gram fusion is for CTC beam search; a transducer fuses a Transformer LM "
                         "(fusion_lm)")
    if kind == "ctc" and cfg.fusion_lm is not None:
        raise ValueError("decode: fusion_lm is for transducer beam search; CTC fuses an n-gram (ngram, lm_dir)")
    if cfg.fusion_lm is not None and cfg.decoder != "beam":
        raise ValueError("decode: fusion_lm needs decoder=beam")


def decode(cfg: DecodeConfig) -> Tuple[DecodeRun, ScoreReport]:
    device = pick_device(cfg.device)
    model, _ = load_trained_model(cfg.checkpoint, FINETUNED)
    kind = "ctc" if hasattr(model, "log_probs") else "transducer"
    check_config(cfg, kind)
    model.to(device)
    lm, lexicon = ngram_paths(cfg) if kind == "ctc" else (None, None)
    if kind == "ctc":
        search = ctc_search(model, cfg, lm, lexicon)
    else:
        fusion = load_trained_model(cfg.fusion_lm, ("transformer_lm",))[0].to(device) if cfg.fusion_lm else None
        search = transducer_search(model, cfg, fusion)
    rescorer = rescoring_lm(cfg, device)
    if rescorer is not None:
        best = with_rescoring(search, rescorer, cfg.rescore_weight)
    else:
        best = lambda e, n: [nbest[0] for nbest in search(e, n)]  # noqa: E731
    loader = make_dataloader(cfg.cuts, max_duration=cfg.max_duration, shuffle=False, sample_rate=cfg.sample_rate)
    run = run_decoding(emissions(model, loader, device), best, desc=f"decode {Path(cfg.cuts).name}")
    return run, score_run(cfg, run, describe(cfg, kind, lm, lexicon))


def score_run(cfg: DecodeConfig, run: DecodeRun, columns: Dict[str, str]) -> ScoreReport:
    """Write text/ref and the scoring report; cuts without a transcript are decoded but not scored."""
    out = Path(cfg.out_dir)
    hyps = run.texts()
    refs = {utt: text for utt, text in read_transcripts(cfg.cuts).items() if utt in hyps}
    unscored = [utt for utt in hyps if utt not in refs]
    if unscored:
        log.warning("%d decoded cut(s) have no transcript and are not scored, e.g. %s", len(unscored), unscored[:5])
    write_text(out / "text", hyps)
    write_text(out / "ref", refs)
    report = score_texts(refs, {utt: hyps[utt] for utt in refs})
    described = {k: v for k, v in cfg.meta.__dict__.items() if v not in ("-", None)}
    meta = {**columns, **described, "checkpoint": cfg.checkpoint, "rtf": round(run.rtf, 4),
            "search_rtf": round(run.search_rtf, 4), "unscored": len(unscored)}
    write_report(report, out, meta)
    log.info("%s: WER %.2f%% CER %.2f%% over %d utterances (%s, LM %s), RTF %.3f", out, 100 * report.wer,
             100 * report.cer, len(report.utts), columns["decoder"], columns["lm"], run.rtf)
    return report
