"""egs/librispeech/ssl1: the data stage on a miniature LibriSpeech + Libri-Light limited made of
real FSDD audio in the corpora's exact layout and naming, and every conf/*.yaml validated."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "librispeech" / "ssl1"
DIGITS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
SPEAKERS = {"george": "103", "jackson": "1034", "lucas": "1040", "nicolas": "1069", "theo": "1081", "yweweler": "1088"}

# part -> [(fsdd speaker, chapter, number of utterances)]
LIBRISPEECH = {
    "train-clean-100": [("george", "1240", 3), ("jackson", "121669", 2)],
    "train-clean-360": [("lucas", "4001", 2)],
    "train-other-500": [("nicolas", "22001", 2)],
    "dev-clean": [("theo", "2902", 2)],
    "dev-other": [("yweweler", "3001", 2)],
    "test-clean": [("george", "5001", 1), ("theo", "5002", 2)],
    "test-other": [("jackson", "6001", 2)],
}
# Libri-Light limited: 1h/{0..5}/{clean,other} and 9h/{clean,other}, LibriSpeech naming inside
LIMITED = {f"1h/{k}/{kind}": [(spk, str(7000 + 10 * k + i), 1)]
           for k in range(6) for i, (kind, spk) in enumerate((("clean", "lucas"), ("other", "nicolas")))}
LIMITED.update({"9h/clean": [("theo", "8001", 2)], "9h/other": [("yweweler", "8002", 2)]})


def write_chapters(split_dir: Path, chapters, fsdd_dir: Path, expected: Dict[str, Tuple[str, str, float]]) -> None:
    """Write ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` (16 kHz) and ``<spk>-<chapter>.trans.txt``."""
    for name, chapter, count in chapters:
        spk = SPEAKERS[name]
        folder = split_dir / spk / chapter
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for utt in range(count):
            digit = (int(chapter) + utt) % 10
            audio, rate = sf.read(fsdd_dir / f"{digit}_{name}_{utt + 5}.wav", dtype="float32")
            audio = np.repeat(audio, 16000 // rate)  # 8 kHz -> 16 kHz, sample-and-hold
            utt_id = f"{spk}-{chapter}-{utt:04d}"
            sf.write(folder / f"{utt_id}.flac", audio, 16000, format="FLAC", subtype="PCM_16")
            lines.append(f"{utt_id} {DIGITS[digit]}\n")
            expected[utt_id] = (spk, DIGITS[digit], len(audio) / 16000)
        (folder / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fsdd_dir) -> Tuple[Path, Dict[str, Dict[str, Tuple[str, str, float]]]]:
    """A corpus_dir with LibriSpeech/ and librispeech_finetuning/; expected utterances per source folder."""
    root = tmp_path_factory.mktemp("corpora")
    expected: Dict[str, Dict[str, Tuple[str, str, float]]] = {}
    for part, chapters in LIBRISPEECH.items():
        write_chapters(root / "LibriSpeech" / part, chapters, fsdd_dir, expected.setdefault(part, {}))
    for rel, chapters in LIMITED.items():
        write_chapters(root / "librispeech_finetuning" / rel, chapters, fsdd_dir, expected.setdefault(rel, {}))
    # a transcript line whose audio is missing: excluded (missing_audio), never silently dropped
    trans = root / "LibriSpeech" / "dev-clean" / "1081" / "2902" / "1081-2902.trans.txt"
    trans.write_text(trans.read_text() + "1081-2902-0099 NINE\n")
    return root, expected


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> Path:
    root, _ = corpus
    work = tmp_path_factory.mktemp("work")
    res = subprocess.run(["bash", str(RECIPE / "run.sh"), "--stage", "0", "--stop_stage", "0",
                          "--corpus_dir", str(root), "--work_dir", str(work)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return work / "data"


SETS = {
    "train_960": ["train-clean-100", "train-clean-360", "train-other-500"],
    "train_100": ["train-clean-100"],
    "dev_clean": ["dev-clean"], "dev_other": ["dev-other"],
    "test_clean": ["test-clean"], "test_other": ["test-other"],
    "train_10m": ["1h/0/clean", "1h/0/other"],
    "train_1h": [f"1h/{k}/{kind}" for k in range(6) for kind in ("clean", "other")],
    "train_10h": [f"1h/{k}/{kind}" for k in range(6) for kind in ("clean", "other")] + ["9h/clean", "9h/other"],
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_data_stage_manifests(prepared, corpus, name):
    _, expected = corpus
    want = {utt: v for src in SETS[name] for utt, v in expected[src].items()}
    cuts = CutSet.from_file(prepared / name / "cuts.jsonl.gz")
    got = {c.id: c for c in cuts}
    assert sorted(got) == sorted(want)
    for utt, (spk, text, duration) in want.items():
        cut = got[utt]
        assert cut.duration == pytest.approx(duration, abs=1e-3)
        assert cut.sampling_rate == 16000
        (sup,) = cut.supervisions
        assert (sup.speaker, sup.text) == (spk, text)
    assert f"{len(want)} kept" in (prepared / name / "report.txt").read_text()


def test_data_stage_reports_missing_audio(prepared):
    excluded = (prepared / "dev_clean" / "excluded.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in excluded] == [["1081-2902-0099", "missing_audio"]]
    assert (prepared / "train_960" / "excluded.tsv").read_text() == ""


def test_limited_sets_nest(prepared):
    ids = {n: {c.id for c in CutSet.from_file(prepared / n / "cuts.jsonl.gz")} for n in ("train_10m", "train_1h", "train_10h")}
    assert ids["train_10m"] < ids["train_1h"] < ids["train_10h"]


# --- every conf/*.yaml of the recipe loads into its stage's config and validates ---------------

CONF = RECIPE / "conf"
NEW_OBJECTIVES = ("wav2vec", "w2v_bert")  # written concurrently; skipped (with the key named) until registered


def _kind(path: Path) -> str:
    for prefix in ("pretrain_", "finetune_", "targets_", "decode_", "lm_"):
        if path.name.startswith(prefix):
            return prefix.rstrip("_")
    return path.stem  # data, tokenizer


def test_recipe_has_every_paper_config():
    names = {p.name for p in CONF.glob("*.yaml")}
    models = ["wav2vec2_base", "wav2vec2_large", "hubert_base_iter1", "hubert_base_iter2", "hubert_large",
              "wavlm_base", "wavlm_base_plus", "wavlm_large", "w2v_bert", "ils_hubert", "wav2vec"]
    want = {f"pretrain_{m}.yaml" for m in models} | {f"finetune_ctc_{s}.yaml" for s in ("10min", "1h", "10h", "100h", "960h")}
    want |= {"data.yaml", "tokenizer.yaml", "lm_4gram.yaml", "lm_transformer.yaml", "decode_greedy.yaml",
             "decode_beam_4gram.yaml", "decode_beam_4gram_transformer.yaml"} | {f"targets_iter{k}.yaml" for k in (1, 2, 3)}
    assert want <= names, sorted(want - names)


def test_every_hyper_parameter_line_cites_a_source():
    """Model, objective, optimizer, schedule and trainer values of the paper configs carry a comment."""
    keys = ("lr:", "max_updates:", "target_batch_seconds:", "max_duration:", "num_classes:", "final_dim:",
            "num_negatives:", "warmup_updates", "freeze_updates:", "time_mask:", "channel_mask:", "masking:")
    for path in sorted(CONF.glob("*.yaml")):
        if _kind(path) not in ("pretrain", "finetune"):
            continue
        for line in path.read_text().splitlines():
            if line.strip().startswith(keys):
                assert "#" in line, f"{path.name}: no source comment on {line.strip()!r}"


def _objective_or_skip(name: str):
    from speechssl2.registry import OBJECTIVES

    if name not in OBJECTIVES:
        if name in NEW_OBJECTIVES:
            pytest.skip(f"objective {name!r} is not registered yet (being written); valid: {OBJECTIVES.keys()}")
        raise AssertionError(f"objective {name!r} is not registered; valid: {OBJECTIVES.keys()}")
    return OBJECTIVES.get(name)


def _check_ssl_model(spec: dict) -> None:
    """Build the model on the meta device (every constructor runs, nothing is allocated); when an
    upstream cannot be built on meta, check every component's argument names and types instead."""
    import torch

    from speechssl2.masking import SpanMasker
    from speechssl2.models.upstream import resolve_spec
    from speechssl2.registry import ENCODERS, FRONTENDS, MODELS, check_arguments

    for obj in spec["objectives"]:
        _objective_or_skip(obj["name"])
    try:
        with torch.device("meta"):
            model = MODELS.build(spec)
        assert sum(p.numel() for p in model.parameters()) > 10_000_000  # paper size, not a tiny preset
        return
    except RuntimeError as err:
        if "meta" not in str(err):
            raise
    full = resolve_spec(spec["upstream"])
    for family, key in ((FRONTENDS, "frontend"), (ENCODERS, "encoder")):
        sub = dict(full[key])
        check_arguments(family.get(sub.pop("name")), sub, where=f"upstream.{key}")
    SpanMasker(**spec["masking"])
    for obj in spec["objectives"]:
        kwargs = {k: v for k, v in obj.items() if k not in ("name", "weight")}
        sizes = {"embed_dim": full["encoder"]["embed_dim"], "feature_dim": 512}
        check_arguments(_objective_or_skip(obj["name"]), {**sizes, **kwargs}, where=f"objectives.{obj['name']}")


def _check(path: Path) -> None:
    from speechssl2.config import load_config
    from speechssl2.registry import CORPORA, MODELS, check_arguments

    kind = _kind(path)
    if kind in ("pretrain", "finetune"):
        from speechssl2.train.config import TrainConfig, validate

        cfg = load_config(TrainConfig, path)
        validate(cfg)
        assert cfg.trainer.target_batch_seconds, "batch must be set in seconds of audio per update"
        if kind == "pretrain":
            _check_ssl_model(cfg.model)
        else:
            from speechssl2.finetune.encoder import FineTuneEncoder

            check_arguments(MODELS.get(cfg.model["name"]), {k: v for k, v in cfg.model.items() if k != "name"}, "model")
            check_arguments(FineTuneEncoder, cfg.model["encoder"], "model.encoder")
    elif kind == "targets":
        from speechssl2.targets.config import TargetsConfig

        load_config(TargetsConfig, path)
    elif kind == "decode":
        try:
            from speechssl2.decoding.pipeline import DecodeConfig
        except ImportError as err:
            pytest.skip(f"speechssl2.decoding.pipeline.DecodeConfig not importable yet: {err}")
        load_config(DecodeConfig, path)
    elif path.name == "lm_4gram.yaml":
        from speechssl2.bin.import_ngram import ImportNgramConfig

        load_config(ImportNgramConfig, path)
    elif path.name == "lm_transformer.yaml":
        from speechssl2.bin.train_lm import TrainLMConfig

        cfg = load_config(TrainLMConfig, path)
        check_arguments(MODELS.get(cfg.model["name"]), {k: v for k, v in cfg.model.items() if k != "name"}, "model")
    elif kind == "data":
        from speechssl2.bin.prepare_data import PrepareDataConfig

        cfg = load_config(PrepareDataConfig, path)
        corpus = {k: v for k, v in cfg.corpus.items() if k != "name"}
        check_arguments(CORPORA.get(cfg.corpus["name"]), {**corpus, "output_dir": "x"}, "corpus")
    elif kind == "tokenizer":
        from speechssl2.bin.train_tokenizer import TrainTokenizerConfig

        load_config(TrainTokenizerConfig, path)
    else:
        raise AssertionError(f"{path.name}: no validation rule for this kind of config")


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.name)
def test_config_validates(path):
    _check(path)


def test_run_sh_stage_configs_exist():
    """Every conf file run.sh names for a stage is present (decoders, fine-tuning sets, targets)."""
    run = (RECIPE / "run.sh").read_text()
    for dec in ("greedy", "beam_4gram", "beam_4gram_transformer"):
        assert dec in run and (CONF / f"decode_{dec}.yaml").is_file()
    for tag in ("10min", "1h", "10h", "100h", "960h"):
        assert tag in run and (CONF / f"finetune_ctc_{tag}.yaml").is_file()
    assert (RECIPE / "ssl.sh").resolve() == (REPO / "egs" / "TEMPLATE" / "ssl1" / "ssl.sh").resolve()
