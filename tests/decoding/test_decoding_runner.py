"""run_decoding: hypotheses per utterance, RTFs from real timings, duplicate ids rejected."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest
import torch

from decoding_helpers import frames_to_log_probs, spell_frames
from speechssl2.decoding.ctc import ctc_greedy
from speechssl2.decoding.ctc_beam import CTCBeamSearch, write_lexicon
from speechssl2.decoding.runner import DecodeBatch, run_decoding
from speechssl2.scoring.kaldi_text import read_text, write_text
from speechssl2.tokenizers import CharTokenizer

TOK = CharTokenizer("eimn")


def _batches(words, delay: float = 0.0):
    """One utterance per batch, 0.5 s of 'audio' each; ``delay`` stands in for a model forward."""
    for i, word in enumerate(words):
        time.sleep(delay)
        lp = frames_to_log_probs(TOK.symbols, spell_frames(list(word + "|")))
        yield DecodeBatch([f"utt{i}"], lp, torch.tensor([lp.shape[1]]), audio_seconds=0.5)


def test_greedy_run_collects_texts_and_rtf(tmp_path: Path):
    words = ["nine", "mine", "mien"]
    run = run_decoding(_batches(words, delay=0.02), partial(ctc_greedy, decode=TOK.decode), total=3)
    assert run.texts() == {"utt0": "nine", "utt1": "mine", "utt2": "mien"}
    assert run.audio_seconds == pytest.approx(1.5)
    assert run.total_seconds >= 0.06 and run.rtf == pytest.approx(run.total_seconds / 1.5)
    assert 0 < run.search_rtf < run.rtf  # the model stand-in's sleep is not search time
    write_text(tmp_path / "text", run.texts())
    assert read_text(tmp_path / "text") == run.texts()


def test_beam_best_plugs_into_the_runner(tmp_path: Path):
    write_lexicon(["nine", "mine"], TOK, tmp_path / "lexicon.txt")
    beam = CTCBeamSearch(TOK, lexicon=str(tmp_path / "lexicon.txt"))
    run = run_decoding(_batches(["nine", "mine"]), beam.best)
    assert run.texts() == {"utt0": "nine", "utt1": "mine"}


def test_duplicate_ids_are_an_error():
    batches = list(_batches(["nine"])) * 2
    with pytest.raises(ValueError, match="'utt0' decoded twice"):
        run_decoding(batches, partial(ctc_greedy, decode=TOK.decode))
