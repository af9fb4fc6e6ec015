"""Decoding speed as real-time factor (decode seconds / audio seconds; lower is faster).

Inputs are synthetic, so only speed is measured: seeded "peaky" CTC log-probs over a
character vocabulary (blank-dominated frames, 20 ms each, like a fine-tuned wav2vec 2.0
head) and, for the transducer, random encoder frames through a randomly initialised
prediction network (1-layer LSTM) and joiner (``speechssl2.finetune.transducer``).

* CTC greedy: ``speechssl2.decoding.ctc.ctc_greedy``;
* CTC beam (flashlight via torchaudio): ``speechssl2.decoding.ctc_beam.CTCBeamSearch``
  without LM, with a token 3-gram (lexicon-free) and with a word 3-gram + lexicon, the
  KenLM models built by ``speechssl2.lm.ngram.build_ngram`` on random digit-word text
  (skipped, and said so, when KenLM's binaries are missing);
* transducer greedy and beam search (``--rnnt-beams``), each batched
  (``speechssl2.decoding.transducer.greedy_search``,
  ``speechssl2.decoding.transducer_batch.batch_beam_search``) and one utterance at a
  time (``speechssl2.decoding.transducer.beam_search``) on the same ``--rnnt-batch``
  utterances; the speed-up column is one-at-a-time time / batched time. The joiner's
  blank bias is lowered so that the random model emits tokens as a trained one does.

    python bench/decode.py --batch 8 --seconds 10 --beam 16 --rnnt-batch 16 --rnnt-beams 4 8
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speechssl2.decoding import transducer as rnnt  # noqa: E402
from speechssl2.decoding.ctc import ctc_greedy  # noqa: E402
from speechssl2.decoding.transducer_batch import batch_beam_search  # noqa: E402
from speechssl2.finetune.transducer import Joiner, PredictionNetwork  # noqa: E402
from speechssl2.tokenizers.char import CharTokenizer  # noqa: E402

FRAME_S = 0.02
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def peaky_log_probs(batch: int, frames: int, vocab: int, seed: int) -> torch.Tensor:
    """(B, T, V): ~70 % of frames blank-dominated, the rest peaked on a random token."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, vocab, generator=gen)
    peak = torch.randint(1, vocab, (batch, frames), generator=gen)
    peak[torch.rand(batch, frames, generator=gen) < 0.7] = 0
    logits.scatter_add_(2, peak[..., None], torch.full((batch, frames, 1), 8.0))
    return logits.log_softmax(-1)


def build_lms(tokenizer: CharTokenizer, out: Path, seed: int, lines: int) -> Optional[Dict[str, Path]]:
    from speechssl2.lm.ngram import build_ngram, find_kenlm

    if find_kenlm() is None:
        return None
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(lines)]
    token_lines = [" ".join(tokenizer.symbols[i] for i in tokenizer.encode(t)) for t in texts]
    lexicon = out / "lexicon.txt"
    lexicon.write_text("".join(f"{w} {' '.join(tokenizer.spell(w))}\n" for w in WORDS), encoding="utf-8")
    return {"token_lm": build_ngram(token_lines, out / "token", order=3),
            "word_lm": build_ngram(texts, out / "word", order=3), "lexicon": lexicon}


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Optional[List[str]] = None) -> List[Dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="audio per utterance (50 frames / s)")
    p.add_argument("--beam", type=int, default=16, help="CTC beam size")
    p.add_argument("--rnnt-beams", type=int, nargs="+", default=[4, 8], help="transducer beam sizes")
    p.add_argument("--rnnt-batch", type=int, default=16, help="utterances of the transducer rows")
    p.add_argument("--repeats", type=int, default=2, help="best of N after a warm-up")
    p.add_argument("--lm-lines", type=int, default=2000, help="random digit-word sentences the n-grams learn from")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = CharTokenizer("".join(sorted(set("".join(WORDS)))))
    frames = int(args.seconds / FRAME_S)
    log_probs = peaky_log_probs(args.batch, frames, tokenizer.vocab_size, args.seed)
    lengths = torch.full((args.batch,), frames)
    audio_s = args.batch * frames * FRAME_S
    rows: List[Dict[str, object]] = []

    def add(name: str, fn: Callable[[], object], seconds_of_audio: float = audio_s) -> None:
        rows.append(dict(search=name, rtf=timed(fn, args.repeats) / seconds_of_audio))

    add("CTC greedy", lambda: ctc_greedy(log_probs, lengths, tokenizer.decode))
    note = ""
    try:
        from speechssl2.decoding.ctc_beam import CTCBeamSearch

        plain = CTCBeamSearch(tokenizer, beam_size=args.beam)
        add(f"CTC beam {args.beam}, no LM", lambda: plain.best(log_probs, lengths))
        with tempfile.TemporaryDirectory() as tmp:
            lms = build_lms(tokenizer, Path(tmp), args.seed, args.lm_lines)
            if lms is None:
                note = "KenLM binaries not found (tools/install_kenlm.sh): LM rows skipped"
            else:
                token = CTCBeamSearch(tokenizer, lm=str(lms["token_lm"]), lm_weight=0.5, beam_size=args.beam)
                add(f"CTC beam {args.beam} + token 3-gram (KenLM)", lambda: token.best(log_probs, lengths))
                word = CTCBeamSearch(tokenizer, lexicon=str(lms["lexicon"]), lm=str(lms["word_lm"]), lm_weight=0.5,
                                     beam_size=args.beam)
                add(f"CTC beam {args.beam} + lexicon + word 3-gram (KenLM)", lambda: word.best(log_probs, lengths))
    except ImportError as err:
        note = f"CTC beam search unavailable ({err})"
    rows += bench_transducer(args, tokenizer.vocab_size, frames)
    print(f"batch={args.batch} seconds/utt={args.seconds} vocab={tokenizer.vocab_size} threads={args.threads} "
          f"best of {args.repeats}" + (f"; {note}" if note else ""))
    print("| search | RTF | x real time | speed-up of batching |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['search']} | {r['rtf']:.2e} | {1 / r['rtf']:.0f} | {r.get('speedup', '')} |")
    return rows


def bench_transducer(args: argparse.Namespace, vocab: int, frames: int) -> List[Dict[str, object]]:
    """Greedy and beam rows, batched then one utterance at a time (same utterances, same model)."""
    torch.manual_seed(args.seed)
    predictor = PredictionNetwork(vocab, embed_dim=64, hidden_dim=128).eval()
    joiner = Joiner(encoder_dim=256, predictor_dim=128, joint_dim=128, vocab_size=vocab).eval()
    with torch.no_grad():
        joiner.output.weight *= 4  # peaky outputs: hypotheses grow as with a trained model
    enc = torch.randn(args.rnnt_batch, frames, 256)
    lengths = torch.full((args.rnnt_batch,), frames)
    audio_s = args.rnnt_batch * frames * FRAME_S
    one = [(enc[b : b + 1], lengths[b : b + 1]) for b in range(args.rnnt_batch)]
    searches = [("greedy", lambda: rnnt.greedy_search(predictor, joiner, enc, lengths),
                 lambda: [rnnt.greedy_search(predictor, joiner, e, n) for e, n in one])]
    for beam in args.rnnt_beams:
        searches.append((f"beam {beam}",
                         lambda beam=beam: batch_beam_search(predictor, joiner, enc, lengths, beam=beam),
                         lambda beam=beam: [rnnt.beam_search(predictor, joiner, e[0], beam=beam) for e, _ in one]))
    rows: List[Dict[str, object]] = []
    for name, batched, single in searches:
        fast, slow = timed(batched, args.repeats) / audio_s, timed(single, args.repeats) / audio_s
        rows.append(dict(search=f"transducer {name}, batch {args.rnnt_batch} (batched)", rtf=fast))
        rows.append(dict(search=f"transducer {name}, one utterance at a time", rtf=slow, speedup=f"{slow / fast:.1f}x"))
    return rows


if __name__ == "__main__":
    main()
