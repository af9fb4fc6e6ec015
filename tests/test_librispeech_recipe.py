"""egs/librispeech/ssl1: the data stage on a miniature LibriSpeech + Libri-Light limited made of
real FSDD audio in the corpora's exact layout and naming, every conf/*.yaml validated, and the
commands stages 1-7 issue through the shared ssl.sh (python replaced by a stub that records them)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

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


def _kind(path: Path) -> str:
    for prefix in ("pretrain_", "finetune_", "targets_", "decode_", "lm_", "tokenizer_"):
        if path.name.startswith(prefix):
            return prefix.rstrip("_")
    return path.stem  # data


def test_recipe_has_every_paper_config():
    names = {p.name for p in CONF.glob("*.yaml")}
    models = ["wav2vec2_base", "wav2vec2_large", "wav2vec2_large_lv60k", "hubert_base_iter1", "hubert_base_iter2", "hubert_large",
              "wavlm_base", "wavlm_base_plus", "wavlm_large", "w2v_bert", "ils_hubert", "wav2vec"]
    sets = ("10min", "1h", "10h", "100h", "960h", "10h_hubert")
    want = {f"pretrain_{m}.yaml" for m in models} | {f"finetune_ctc_{s}.yaml" for s in sets}
    want |= {"data.yaml", "tokenizer_char.yaml", "lm_4gram.yaml", "lm_transformer.yaml", "decode_greedy.yaml",
             "decode_beam_4gram.yaml", "decode_beam_4gram_transformer.yaml"} | {f"targets_iter{k}.yaml" for k in (1, 2, 3)}
    assert want <= names, sorted(want - names)


LEAF = re.compile(r"^\s*(- )?([A-Za-z_][\w.]*:\s*\S|[^\s#:][^:]*$)")  # key: value, or a bare list item
COMMENT = re.compile(r"(^|\s)#(.*)$")
SOURCE = re.compile(r"\[[A-Za-z][^\]]*\]|run\.sh")  # a source tag ([FT], [P] Sec. 4, [ours], [unverified]) or run.sh


def uncited_leaves(text: str) -> List[str]:
    """Lines holding a value (``key: value``, ``key: {...}``, ``- item``) whose comment, on the line or in
    the comment block directly above it, names no source. Container keys (``model:``) and blank lines are
    exempt; the file's header block cites sources for the file, not for the value that follows it."""
    lines = text.splitlines()
    bad = []
    for i, line in enumerate(lines):
        found = COMMENT.search(line)
        code = line[: found.start()] if found else line
        if not code.strip() or not LEAF.match(code):
            continue
        notes = [found.group(2)] if found else []
        start = i
        while start > 0 and lines[start - 1].strip().startswith("#"):
            start -= 1
        if start > 0:  # a block that is not the file header
            notes += [lines[k].strip()[1:] for k in range(start, i)]
        if not any(SOURCE.search(note) for note in notes):
            bad.append(f"{i + 1}: {line.strip()}")
    return bad


def test_uncited_leaves_finds_every_kind_of_gap():
    text = ("# header [P]\nseed: 1\nmodel:\n  name: ssl\n  lr: 1.0e-3        # peak\n  eps: 1.0e-8  # [FS] adam_eps\n"
            "  # [FS] weight_decay, as\n  # released\n  weight_decay: 0.01\n  betas: [0.9, 0.98]   # see [0.9, 0.98]\n"
            "  steps:\n    - 10\n  path: a#b   # run.sh sets it\n")
    assert uncited_leaves(text) == ["2: seed: 1", "4: name: ssl", "5: lr: 1.0e-3        # peak",
                                    "10: betas: [0.9, 0.98]   # see [0.9, 0.98]", "12: - 10"]


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.name)
def test_every_value_line_cites_a_source(path):
    """Every value of every recipe config names its source: the paper or released config it comes
    from, [ours] for our own choices, [unverified] where recalled, or run.sh where the stage sets it."""
    bad = uncited_leaves(path.read_text())
    assert not bad, f"{path.name}: values without a source comment:\n" + "\n".join(bad)


# Frontends whose constructor reads tensor values, which the meta device does not have: torchaudio's
# MelSpectrogram (the w2v-BERT log-mel frontend) checks its filterbank for empty bins in __init__
# ("Tensor.item() cannot be called on meta tensors"). Models with one are built on the CPU for
# real (w2v-BERT XL: 0.6B parameters, 2.4 GB of float32, ~7 s on 2 cores); the others on meta.
FRONTENDS_BUILT_ON_CPU = {"fbank"}


def _check_ssl_model(spec: dict) -> None:
    """Build the whole model, every constructor run (on the meta device: nothing is allocated), and
    check its size: paper size, not a tiny preset. A build error fails the test."""
    import torch

    from speechssl2.models.upstream import resolve_spec
    from speechssl2.registry import MODELS

    frontend = resolve_spec(spec["upstream"])["frontend"]["name"]
    with torch.device("cpu" if frontend in FRONTENDS_BUILT_ON_CPU else "meta"):
        model = MODELS.build(spec)
    assert sum(p.numel() for p in model.parameters()) > 10_000_000  # paper size, not a tiny preset


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
            # the rates fit a real Transformer upstream (names and ranges are checked when they are set)
            FineTuneEncoder({"name": "hubert_tiny"}, upstream_overrides=cfg.model["encoder"]["upstream_overrides"])
    elif kind == "targets":
        from speechssl2.targets.config import TargetsConfig

        load_config(TargetsConfig, path)
    elif kind == "decode":
        from speechssl2.decoding.pipeline import DecodeConfig

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


# --- stages 1-7: the commands run.sh issues through ssl.sh, with a stand-in for python -----------

# Records its arguments (one call per line, \x1f between arguments) and succeeds.
STUB_PYTHON = "#!/usr/bin/env bash\n(IFS=$'\\x1f'; printf '%s\\n' \"$*\") >> \"$(dirname \"$0\")/calls\"\n"
TEMPLATE_SSL = REPO / "egs" / "TEMPLATE" / "ssl1" / "ssl.sh"


@pytest.fixture
def stub_recipe(tmp_path) -> Path:
    """The recipe folder (its real run.sh, ssl.sh, cmd.sh, conf and utils) with a path.sh that puts
    the stub python first on PATH instead of the virtual environment."""
    bin_dir, recipe = tmp_path / "bin", tmp_path / "recipe"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(STUB_PYTHON)
    (bin_dir / "python").chmod(0o755)
    recipe.mkdir()
    for name in ("run.sh", "ssl.sh", "cmd.sh", "conf", "utils"):
        (recipe / name).symlink_to(RECIPE / name)
    (recipe / "path.sh").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    return recipe


class Call(NamedTuple):
    module: str
    config: Optional[str]
    sets: Dict[str, str]


def read_calls(path: Path) -> List[Call]:
    calls = []
    for line in path.read_text().splitlines():
        argv = line.split("\x1f")
        m = len(argv) - 1 - argv[::-1].index("-m")  # the last -m: utils/launch.sh may run torch.distributed.run first
        args = argv[m + 2:]
        config = args[args.index("--config") + 1] if "--config" in args else None
        sets = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--set")
        calls.append(Call(argv[m + 1].removeprefix("speechssl2.bin."), config, sets))
    return calls


# pretrain_model, finetune_set -> HuBERT target iteration, fine-tuning data set, its RESULTS.md name
CASES = [("hubert_base_iter1", "10h", 1, "train_10h", "train_10h"),
         ("hubert_base_iter2", "10h_hubert", 2, "train_10h", "train_10h_hubert"),
         ("hubert_large", "960h", 3, "train_960", "train_960"),
         ("wavlm_base", "100h", 2, "train_100", "train_100"),
         ("wav2vec2_base", "10min", 0, "train_10m", "train_10m"),
         ("w2v_bert", "1h", 0, "train_1h", "train_1h")]
TESTS = ["dev_clean", "dev_other", "test_clean", "test_other"]


@pytest.mark.parametrize("model, ft, iteration, ft_data, ft_label", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_stages_1_to_7_issue_the_template_commands(stub_recipe, tmp_path, model, ft, iteration, ft_data, ft_label):
    work, corpus = tmp_path / "work", tmp_path / "corpora"
    (corpus / "lm").mkdir(parents=True)
    (corpus / "lm" / "librispeech-lm-norm.txt").write_text("")
    (work / "RESULTS.md").parent.mkdir()
    (work / "RESULTS.md").write_text("")  # stage 7 shows the table the (stub) results stage wrote
    with_lm = iteration != 0  # without exp/lm_4gram/lm.bin (no KenLM) only greedy decoding runs
    if with_lm:
        (work / "exp" / "lm_4gram").mkdir(parents=True)
        (work / "exp" / "lm_4gram" / "lm.bin").write_text("")
    res = subprocess.run(["bash", str(stub_recipe / "run.sh"), "--stage", "1", "--stop_stage", "7", "--nj", "3",
                          "--corpus_dir", str(corpus), "--work_dir", str(work), "--pretrain_model", model,
                          "--finetune_set", ft], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    calls = read_calls(stub_recipe.parent / "bin" / "calls")
    conf, data, exp = stub_recipe / "conf", work / "data", work / "exp"
    assert all(Path(c.config).is_file() for c in calls if c.config), [c.config for c in calls]
    by = {}
    for c in calls:
        by.setdefault(c.module, []).append(c)
    steps = [m for i, m in enumerate(c.module for c in calls) if i == 0 or calls[i - 1].module != m]
    targets = ["dump_features", "learn_kmeans", "dump_labels"] if iteration else []
    assert steps == ["train_tokenizer", "validate_data", *targets, "train", "finetune", "import_ngram", "train_lm",
                     "decode", "results"]

    # 1: the tokenizer learns train_960's transcripts; every set the later stages read is validated
    assert by["train_tokenizer"][0].sets["texts"] == f"[{data}/train_960/cuts.jsonl.gz]"
    validated = {c.sets["output"] for c in by["validate_data"]}
    assert {f"{data}/{s}/cuts_char.jsonl.gz" for s in [ft_data, "train_960", "dev_other", *TESTS]} <= validated

    # 2: features and labels in 3 jobs, one shard each; k-means and the merged manifest once
    if iteration:
        for c in calls[len(by["train_tokenizer"] + by["validate_data"]):][: 3 + 1 + 4]:
            assert c.config == f"{conf}/targets_iter{iteration}.yaml"
            assert c.sets["cuts"] == f"{data}/train_960/cuts.jsonl.gz" and c.sets["exp_dir"] == f"{exp}/hubert_targets"
            assert c.sets["shard.nshard"] == "3"
            assert c.sets.get("features.checkpoint") == (
                f"{exp}/pretrain_hubert_base_iter{iteration - 1}/checkpoint_last.pt" if iteration > 1 else None)
        assert sorted(c.sets["shard.rank"] for c in by["dump_features"]) == ["0", "1", "2"]
        assert sorted(c.sets.get("shard.rank", "all") for c in by["dump_labels"]) == ["0", "1", "2", "all"]
        assert "shard.rank" not in by["learn_kmeans"][0].sets and "shard.rank" not in calls[
            len(by["train_tokenizer"] + by["validate_data"]) + 3 + 1 + 3].sets  # merge after the label jobs
        for n in range(3):
            assert (exp / "hubert_targets" / "log" / f"dump_labels_iter{iteration}.{n}.log").is_file()

    # 3: pre-training on the labels of that iteration (or the plain cuts) -> exp/pretrain_<model>
    (train,) = by["train"]
    assert train.config == f"{conf}/pretrain_{model}.yaml" and train.sets["exp_dir"] == f"{exp}/pretrain_{model}"
    manifest = f"cuts_hubert_iter{iteration}" if iteration else "cuts"
    assert train.sets["data.train"] == f"{data}/train_960/{manifest}.jsonl.gz"

    # 4: CTC fine-tuning with the set's recipe on its validated data
    (fine,) = by["finetune"]
    ft_exp = f"{exp}/finetune_{model}_ctc_{ft}"
    assert fine.config == f"{conf}/finetune_ctc_{ft}.yaml"
    assert fine.sets == {"model.encoder.upstream": f"{exp}/pretrain_{model}/checkpoint_last.pt",
                         "model.tokenizer": f"{data}/lang_char", "data.train": f"{data}/{ft_data}/cuts_char.jsonl.gz",
                         "data.valid": f"{data}/dev_other/cuts_char.jsonl.gz", "exp_dir": ft_exp}

    # 5 (run.sh's own): the official 4-gram and the Transformer LM
    assert by["import_ngram"][0].sets["out_dir"] == f"{exp}/lm_4gram"
    assert by["train_lm"][0].sets["exp_dir"] == f"{exp}/lm_transformer"

    # 6: every test set with every decoder; only the last one rescores with the Transformer LM
    decoders = ["greedy", "beam_4gram", "beam_4gram_transformer"] if with_lm else ["greedy"]
    got = {(c.sets["meta.test_set"], Path(c.config).stem.removeprefix("decode_")): c for c in by["decode"]}
    assert sorted(got) == sorted((t, d) for t in TESTS for d in decoders)
    for (test, dec), c in got.items():
        assert c.sets["checkpoint"] == f"{ft_exp}/checkpoint_best.pt"
        assert c.sets["cuts"] == f"{data}/{test}/cuts_char.jsonl.gz" and c.sets["out_dir"] == f"{ft_exp}/decode_{dec}_{test}"
        assert c.sets["lm_dir"] == f"{exp}/lm_4gram"
        assert c.sets.get("rescore_lm") == (
            f"{exp}/lm_transformer/checkpoint_best.pt" if dec == "beam_4gram_transformer" else None)
        assert (c.sets["meta.upstream"], c.sets["meta.finetune_set"], c.sets["meta.units"]) == (model, ft_label, "char")
    if not with_lm:
        assert "no n-gram LM in" in res.stdout and "skipping beam_4gram" in res.stdout

    # 7: one table of every experiment
    assert by["results"][0].sets["exp_dir"] == str(exp)


def test_recipe_uses_the_template_stages():
    assert (RECIPE / "ssl.sh").resolve() == TEMPLATE_SSL.resolve()


def test_init_from_and_km_centroids_reach_stages_2_and_3(stub_recipe, tmp_path):
    """Continued pre-training from a released model: its checkpoint starts stage 3, its k-means labels stage 2."""
    work = tmp_path / "work"
    res = subprocess.run(["bash", str(stub_recipe / "run.sh"), "--stage", "2", "--stop_stage", "3", "--nj", "1",
                          "--work_dir", str(work), "--pretrain_model", "hubert_base_iter1",
                          "--init_from", "/ckpt/hubert_base_ls960.pt"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    calls = read_calls(stub_recipe.parent / "bin" / "calls")
    (train,) = [c for c in calls if c.module == "train"]
    assert train.sets["init_from"] == "/ckpt/hubert_base_ls960.pt"
    assert all("kmeans.centroids" not in c.sets for c in calls)  # not given: k-means is trained
    res = subprocess.run(["bash", str(stub_recipe / "ssl.sh"), "--stage", "2", "--stop_stage", "2", "--nj", "1",
                          "--work_dir", str(work), "--km_centroids", "/ckpt/km.npy"],
                         capture_output=True, text=True, cwd=stub_recipe)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    km = [c for c in read_calls(stub_recipe.parent / "bin" / "calls") if c.module == "learn_kmeans"]
    assert km[-1].sets["kmeans.centroids"] == "/ckpt/km.npy"
