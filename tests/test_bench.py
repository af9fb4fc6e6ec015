"""The bench scripts: each runs end to end with its tiniest flags (so they do not rot), and the
encoder bench's helpers compare what they claim to compare."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from speechssl2.models.functional import padding_mask

BENCH = Path(__file__).resolve().parents[1] / "bench"
SHARED = Path(os.environ.get("SPEECHSSL2_SHARED_DATA", BENCH.parents[1] / "shared" / "data"))


def load(script: str):
    spec = importlib.util.spec_from_file_location(f"bench_{script}", BENCH / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(script: str, *argv: str):
    return load(script).main(list(argv))


@pytest.fixture(scope="module")
def encoder():
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return load("encoder")


def test_bench_encoder(capsys):
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    impls = {"speechssl2", "speechssl2-plain", "speechssl2-sdpa", "transformers", "torchaudio"}
    rows = run("encoder", "--tiny", "--models", "wavlm", "--batch", "2", "--seconds", "0.2", "--repeats", "1",
               "--impls", ",".join(sorted(impls)), "--threads", "1")
    assert {r["impl"] for r in rows} == impls
    assert all(r["audio_per_s"] > 0 and r["mem_mb"] >= 0 and r["tflops"] > 0 and r["mfu"] is None for r in rows)
    assert "| wavlm | speechssl2 |" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert", "wavlm"])
def test_encoder_bench_implementations_agree_in_eval(encoder, kind):
    """The bench's models hold the same weights and its forwards compute the same thing (unpadded batch)."""
    impls = ["speechssl2", "speechssl2-plain", "speechssl2-sdpa", "transformers", "torchaudio"]
    models = encoder.build_all(kind, impls, seed=0, tiny=True)
    torch.manual_seed(0)
    wav = torch.randn(2, 8000) * 0.1
    lengths = torch.full((2,), 8000)
    with torch.no_grad():
        out = {impl: encoder.forward_fn(impl, models[impl].eval(), wav, lengths, wavlm=kind == "wavlm")()
               for impl in impls}
    assert out["speechssl2"].shape == (2, 24, 64)  # tiny configs keep the 320-sample stride
    for impl in impls[1:]:
        torch.testing.assert_close(out[impl], out["speechssl2"], rtol=1e-4, atol=1e-4, msg=impl)


def counting(calls: list, name: str, fn):
    def counted(*args, **kwargs):
        calls.append(name)
        return fn(*args, **kwargs)

    return counted


def test_plain_and_sdpa_impls_really_swap_the_formulas(encoder, monkeypatch):
    """A stale monkeypatch (our model no longer calling what the bench replaces) fails here."""
    from speechssl2.models import conv_frontend, functional, transformer, wavlm

    position_mask, calls = transformer.gated_position_mask, []
    monkeypatch.setattr(encoder, "plain_group_norm", counting(calls, "plain_group_norm", encoder.plain_group_norm))
    monkeypatch.setattr(encoder, "plain_position_mask",
                        counting(calls, "plain_position_mask", encoder.plain_position_mask))
    monkeypatch.setattr(wavlm, "gated_position_mask", counting(calls, "dense_mask", wavlm.gated_position_mask))
    models = encoder.build_all("wavlm", ["speechssl2", "speechssl2-plain", "speechssl2-sdpa"], seed=0, tiny=True)
    wav, lengths = encoder.make_batch(2, 0.2, torch.device("cpu"))  # padded: the masked group norm path
    layers = len(models["speechssl2"].encoder.layers)
    out = {}
    with torch.no_grad():
        for impl, expected in [("speechssl2", []), ("speechssl2-plain", ["plain_group_norm"] + ["plain_position_mask"]
                                                     * layers), ("speechssl2-sdpa", ["dense_mask"] * layers)]:
            calls.clear()
            out[impl] = encoder.forward_fn(impl, models[impl].eval(), wav, lengths, wavlm=True)()
            assert calls == expected, impl
    assert conv_frontend.masked_group_norm is functional.masked_group_norm  # restored
    assert transformer.gated_position_mask is position_mask
    valid = ~padding_mask(models["speechssl2"].frame_lengths(lengths), out["speechssl2"].shape[1])[..., None]
    for impl in ("speechssl2-plain", "speechssl2-sdpa"):  # padded frames may be 0 or not: compare the valid ones
        torch.testing.assert_close(out[impl] * valid, out["speechssl2"] * valid, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, precision, peak", [
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA L40S", "bf16", 362.0),  # not the L4's
    ("NVIDIA L40S", "fp32", 91.6),
    ("NVIDIA L40", "bf16", None),  # not in the table: neither the L4's nor the L40S's
    ("NVIDIA H100 80GB HBM3", "bf16", 989.0),
    ("NVIDIA H100 80GB HBM3", "tf32", 494.5),
    ("NVIDIA H100 PCIe", "bf16", 756.0),
    ("NVIDIA A100-SXM4-80GB", "fp32", 19.5),
    ("NVIDIA A10", "tf32", 62.5),  # not the A100's
    ("Tesla T4", "bf16", None),
])
def test_device_peak_tflops(encoder, monkeypatch, name, precision, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    assert encoder.device_peak_tflops(torch.device("cuda"), precision) == peak
    assert encoder.device_peak_tflops(torch.device("cpu"), precision) is None


def test_markdown_table_with_mfu(encoder):
    row = dict(model="wavlm", step_s=0.5, audio_per_s=12.0, mem_mb=1000.4, tflops=123.4567, ours_vs_best_peer=1.25)
    rows = [dict(row, impl="speechssl2", vs_ours=1.0, mfu=0.1248),
            dict(row, impl="transformers", audio_per_s=9.6, vs_ours=0.8, mfu=None)]
    lines = encoder.markdown(rows, show_mfu=True).splitlines()
    assert lines[0] == ("| model | impl | step (wall s) | audio s / s | x speechssl2 | peak mem (MiB) | TFLOP/s "
                        "| MFU |")
    assert lines[2] == "| wavlm | speechssl2 | 0.500 | 12.00 | 1.00 | 1000 | 123.457 | 12.5 % |"
    assert lines[3] == "| wavlm | transformers | 0.500 | 9.60 | 0.80 | 1000 | 123.457 | n/a |"
    assert lines[-1] == "wavlm: speechssl2 / fastest peer = 1.25x"
    assert "MFU" not in encoder.markdown(rows, show_mfu=False, clock="cpu").splitlines()[0]


def test_bench_masking():
    rows = run("masking", "--batch", "2", "--frames", "50", "--repeats", "1")
    assert len(rows) == 2 and 0 < rows[0]["fraction"] < 1


def test_bench_mask_fraction():
    rows = run("mask_fraction", "--lengths", "librispeech", "--utterances", "64", "--batch", "4", "--probs", "0.65")
    assert [(r["sampler"], r["shape"]) for r in rows] == [("stationary", "any"), ("fairseq", "alone"),
                                                        ("fairseq", "bucketed"), ("fairseq", "random"),
                                                        ("fairseq", "cropped")]
    assert all(0 < r["fractions"][0] < 1 for r in rows)
    # require_same_masks: padded random batches mask less than utterances alone
    assert rows[3]["fractions"][0] < rows[1]["fractions"][0]


def test_bench_data():
    if not (SHARED / "fsdd" / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {SHARED}")
    rows = run("data", "--files", "8", "--max-duration", "2")
    assert len(rows) == 3 and all(r["per_core"] > 0 for r in rows)


def test_bench_kmeans():
    rows = run("kmeans", "--frames", "400", "--dim", "4", "--clusters", "4", "--niter", "2", "--max-iter", "5")
    expected = ["faiss", "faiss", "torch"] + (["sklearn"] if importlib.util.find_spec("sklearn") else [])
    assert [r["impl"].split()[0] for r in rows] == expected
    assert all(r["reached"] and r["inertia"] <= max(q["best_inertia"] for q in rows) for r in rows)
    assert min(r["best_inertia"] for r in rows) < max(r["best_inertia"] for r in rows)  # a real target


def test_bench_decode():
    rows = run("decode", "--batch", "1", "--seconds", "0.4", "--repeats", "1", "--rnnt-batch", "2", "--rnnt-beams", "2",
               "--lm-lines", "30", "--beam", "4")
    assert {"CTC greedy", "transducer greedy, batch 2 (batched)", "transducer beam 2, batch 2 (batched)",
            "transducer beam 2, one utterance at a time"} <= {r["search"] for r in rows}
    assert all(float(r["speedup"][:-1]) > 0 for r in rows if "one utterance" in r["search"])


def test_bench_transducer_memory():
    rows = run("transducer_memory", "--batch", "3", "--frames", "30", "--labels", "4", "--vocab", "50", "--joint-dim", "64",
               "--encoder-dim", "8", "--predictor-dim", "8", "--chunks", "0", "1")
    assert [r["chunk"] for r in rows] == [0, 1]
    assert rows[1]["peak_mb"] < rows[0]["peak_mb"]  # one utterance's joint tensor instead of three


def test_bench_train_step(capsys):
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    models = ["wav2vec", "wav2vec2", "hubert", "wavlm", "w2v_bert", "ils"]
    rows = run("train_step", "--sizes", "tiny", "--base", "tiny", "--batch", "2", "--seconds", "0.5",
               "--repeats", "1", "--threads", "1")
    assert [r["preset"] for r in rows[:-1]] == [f"{m}_tiny" for m in models]
    assert rows[-1]["x_base"] == 1.0
    assert all(r["flops"] > 0 and r["audio_per_s_1"] > 0 and r["gflops"] > 0 for r in rows)
    assert "| hubert_tiny |" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["wav2vec", "w2v_bert", "ils"])
def test_train_step_bench_makes_an_update(model):
    """What the bench times is a training update: every trainable weight moves and the gradients are reset."""
    bench = load("train_step")
    ssl = bench.build_model(model, "tiny", seed=0)
    wav, lengths = bench.audio_batch(2, 0.5, 0.5, seed=0)
    before = {name: p.detach().clone() for name, p in ssl.named_parameters()}
    bench.train_step_fn(ssl, bench.ssl_batch(ssl, wav, lengths, seed=0))()
    moved = {name for name, p in ssl.named_parameters() if not torch.equal(p, before[name])}
    assert moved == set(before)
    assert all(p.grad is None for p in ssl.parameters())


def test_bench_scale(capsys):
    rows = run("scale", "--sizes", "300,600", "--extrapolate", "1200", "--nshard", "2", "--shard-size", "100",
               "--max-frames", "20000", "--rate-seconds", "2", "--flac-files", "5")
    assert sorted(rows) == [300, 600, 1200]
    assert all(seconds > 0 and mib >= 0 for size in rows.values() for seconds, mib in size.values())
    growth = rows[600]["lazy load"][0] / rows[300]["lazy load"][0]  # power law through the two measured sizes
    assert rows[1200]["lazy load"][0] == pytest.approx(rows[600]["lazy load"][0] * max(growth, 1.0))
    out = capsys.readouterr().out
    assert "| 1,200 cuts (extrapolated) |" in out and "| Shar index |" in out and "Slurm array jobs" in out


def test_scale_bench_synthetic_manifest_is_lhotse_readable(tmp_path):
    """The synthetic cuts, label parts and Shar index are what lhotse and our readers accept."""
    from speechssl2.data.loader import open_cuts

    bench = load("scale")
    paths = bench.build(tmp_path, 25, nshard=2, shard_size=10, seed=0)
    cuts = list(open_cuts(paths["manifest"]))
    assert len(cuts) == 25 and all(1.0 <= c.duration <= 431.0 for c in cuts)
    shar = list(open_cuts(paths["shar"]))
    assert [c.id for c in shar] == [c.id for c in cuts]
    part = list(open_cuts(tmp_path / "cuts_0_2.jsonl.gz"))
    assert part[0].has_custom(bench.FIELD) and part[0].hubert_labels.shape == [int(cuts[0].duration * 50)]
    sample = bench.sample_utterances([bench.ShardFiles(tmp_path / "feats", r, 2) for r in range(2)], 1.0, 10**9, 0)
    assert sample.frames.shape == (sum(int(c.duration * 50) for c in cuts), 39) and not sample.frames.any()
