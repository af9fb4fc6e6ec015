"""bin.decode: a fine-tuned checkpoint + a cut manifest -> hypotheses, scores and result.json."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from finetune_helpers import CHARS, DIGITS, NO_MASKS, fsdd_batch, overfit
from speechssl2.bin import decode
from speechssl2.lm.ngram import build_ngram, find_kenlm
from speechssl2.registry import MODELS
from speechssl2.scoring.kaldi_text import read_text
from speechssl2.scoring.results import collect_results
from test_finetune_cli import NAMES, fsdd_cuts

CTC = {"name": "ctc", "tokenizer": CHARS,
       "encoder": {"upstream": {"name": "wav2vec2_tiny", "feature_dropout": 0.0}, **NO_MASKS}}


def save_trained(model: torch.nn.Module, spec: dict, path) -> str:
    """The two entries of a trainer checkpoint that decoding reads."""
    torch.save({"model": model.state_dict(), "config": {"model": spec}}, path)
    return str(path)


@pytest.fixture(scope="module")
def trained(fsdd_dir, tmp_path_factory):
    """A CTC model overfitted on four FSDD utterances, its checkpoint and their cut manifest."""
    tmp = tmp_path_factory.mktemp("decode")
    torch.manual_seed(0)
    model = MODELS.build(CTC)
    overfit(model, fsdd_batch(fsdd_dir, NAMES), steps=100)
    return save_trained(model, CTC, tmp / "ctc.pt"), fsdd_cuts(fsdd_dir, tmp / "cuts.jsonl.gz")


def run(checkpoint, cuts, out_dir, *sets):
    args = [f"checkpoint={checkpoint}", f"cuts={cuts}", f"out_dir={out_dir}", "device=cpu",
            "meta.upstream=wav2vec2_tiny", "meta.test_set=four", *sets]
    return decode.main([a for s in args for a in ("--set", s)])


@pytest.mark.slow
def test_greedy_decoding_writes_hypotheses_scores_and_rtf(trained, tmp_path):
    checkpoint, cuts = trained
    report = run(checkpoint, cuts, tmp_path / "greedy", "decoder=greedy")
    assert report.wer == 0.0
    assert sorted(read_text(tmp_path / "greedy" / "text").values()) == sorted(DIGITS[:4])
    result = json.loads((tmp_path / "greedy" / "result.json").read_text())
    assert (result["decoder"], result["lm"], result["num_utts"], result["test_set"]) == ("ctc greedy", "none", 4, "four")
    assert result["rtf"] > 0
    assert [r["decoder"] for r in collect_results(tmp_path)] == ["ctc greedy"]


@pytest.mark.slow
@pytest.mark.skipif(find_kenlm() is None, reason="KenLM not built (tools/install_kenlm.sh)")
def test_beam_search_with_word_lm_and_lexicon(trained, tmp_path):
    checkpoint, cuts = trained
    lm_dir = tmp_path / "lm"
    build_ngram([" ".join(DIGITS[:4])] * 3 + DIGITS, lm_dir, order=2, binary=True)
    (lm_dir / "lexicon.txt").write_text("".join(f"{w} {' '.join(w)} |\n" for w in DIGITS))
    report = run(checkpoint, cuts, tmp_path / "beam", "decoder=beam", "ngram=true", f"lm_dir={lm_dir}",
                 "lm_weight=0.5")
    assert report.wer == 0.0
    result = json.loads((tmp_path / "beam" / "result.json").read_text())
    assert result["decoder"] == "ctc beam (beam 20)"
    digest = hashlib.sha1((lm_dir / "lm.bin").read_bytes()).hexdigest()[:8]
    assert result["lm"] == f"lm@{digest} lexicon x0.5"  # which build of the LM decoded


def test_beam_lm_without_an_lm_file_decodes_without_lm_and_says_so(trained, tmp_path):
    checkpoint, cuts = trained
    (tmp_path / "lm").mkdir()
    report = run(checkpoint, cuts, tmp_path / "beam", "decoder=beam", "ngram=true", f"lm_dir={tmp_path / 'lm'}")
    assert "no n-gram LM" in (tmp_path / "beam" / "decode.log").read_text()
    assert json.loads((tmp_path / "beam" / "result.json").read_text())["lm"] == "none"
    assert report.wer == 0.0


def random_transducer(fsdd_dir, tmp_path):
    """A randomly initialised small transducer's checkpoint and the four FSDD cuts."""
    spec = {"name": "transducer", "tokenizer": CHARS, "encoder": CTC["encoder"],
            "predictor": {"embed_dim": 16, "hidden_dim": 16}, "joint_dim": 16}
    torch.manual_seed(0)
    return save_trained(MODELS.build(spec), spec, tmp_path / "rnnt.pt"), fsdd_cuts(fsdd_dir, tmp_path / "cuts.jsonl.gz")


def test_transducer_checkpoint_decodes_every_cut(fsdd_dir, tmp_path):
    checkpoint, cuts = random_transducer(fsdd_dir, tmp_path)
    for decoder in ("greedy", "beam"):
        run(checkpoint, cuts, tmp_path / decoder, f"decoder={decoder}", "beam_size=2")
        assert len(read_text(tmp_path / decoder / "text")) == len(NAMES)
        assert json.loads((tmp_path / decoder / "result.json").read_text())["decoder"].startswith(f"transducer {decoder}")


def test_a_pretraining_checkpoint_is_refused_by_name(tmp_path):
    spec = {"name": "transformer_lm", "tokenizer": CHARS, "embed_dim": 16, "num_layers": 1, "num_heads": 2}
    checkpoint = save_trained(MODELS.build(spec), spec, tmp_path / "lm.pt")
    with pytest.raises(ValueError, match=r"lm\.pt holds a 'transformer_lm' model; expected one of ctc, transducer"):
        run(checkpoint, tmp_path / "none.jsonl.gz", tmp_path / "out")


def test_rescoring_a_one_best_list_is_an_error(trained, tmp_path):
    checkpoint, cuts = trained
    with pytest.raises(ValueError, match="rescore_lm needs decoder=beam and nbest >= 2"):
        run(checkpoint, cuts, tmp_path / "out", "decoder=greedy", f"rescore_lm={checkpoint}")


def test_transducer_nbest_rescored_with_the_ngram(fsdd_dir, tmp_path):
    """A transducer beam's n-best re-ranked by the word n-gram of lm_dir: the LM column names the LM build."""
    checkpoint, cuts = random_transducer(fsdd_dir, tmp_path)
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    unigrams = "\n".join(f"-1.0\t{w}" for w in DIGITS)
    (lm_dir / "lm.arpa").write_text(f"\\data\\\nngram 1={len(DIGITS) + 3}\nngram 2=1\n\n\\1-grams:\n-99\t<s>\t0\n"
                                    f"-1.0\t</s>\n-2.0\t<unk>\n{unigrams}\n\n\\2-grams:\n-0.5\t<s> one\n\n\\end\\\n")
    (lm_dir / "lexicon.txt").write_text("".join(f"{w} {' '.join(w)} |\n" for w in DIGITS))
    run(checkpoint, cuts, tmp_path / "out", "decoder=beam", "beam_size=4", "nbest=4", "rescore_ngram=true",
        f"lm_dir={lm_dir}")
    assert len(read_text(tmp_path / "out" / "text")) == len(NAMES)
    digest = hashlib.sha1((lm_dir / "lm.arpa").read_bytes()).hexdigest()[:8]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["lm"] == f"lm@{digest} rescoring x0.5"
    # the n-gram is an input of the stage: another LM at the same path decodes again
    (lm_dir / "lm.arpa").write_text((lm_dir / "lm.arpa").read_text().replace("-0.5\t<s> one", "-0.6\t<s> one"))
    stamp = (tmp_path / "out" / ".stage.decode.json").stat().st_mtime_ns
    run(checkpoint, cuts, tmp_path / "out", "decoder=beam", "beam_size=4", "nbest=4", "rescore_ngram=true",
        f"lm_dir={lm_dir}")
    assert (tmp_path / "out" / ".stage.decode.json").stat().st_mtime_ns != stamp
    with pytest.raises(ValueError, match="rescore_ngram needs decoder=beam and nbest >= 2"):
        run(checkpoint, cuts, tmp_path / "x", "decoder=beam", "rescore_ngram=true", f"lm_dir={lm_dir}")
    with pytest.raises(ValueError, match="not both"):
        run(checkpoint, cuts, tmp_path / "x", "decoder=beam", "nbest=2", "rescore_ngram=true", f"lm_dir={lm_dir}",
            f"rescore_lm={checkpoint}")
    (lm_dir / "lm.arpa").unlink()
    with pytest.raises(FileNotFoundError, match="holds no lm.bin or lm.arpa"):
        run(checkpoint, cuts, tmp_path / "x", "decoder=beam", "nbest=2", "rescore_ngram=true", f"lm_dir={lm_dir}")
