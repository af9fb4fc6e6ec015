"""Feature stores: cached = on the fly = one utterance at a time; the disk cache is reused and keyed."""
from __future__ import annotations

import pytest
import torch

from speechssl2.models import build_upstream
from speechssl2.probe import features as F
from speechssl2.probe.featurizer import FrozenUpstream
from speechssl2.probe.labels import load_labelled_set

CPU = torch.device("cpu")


def frozen(seed: int) -> FrozenUpstream:
    torch.manual_seed(seed)
    return FrozenUpstream(build_upstream({"name": "wav2vec2_tiny"}))


@pytest.fixture(scope="module")
def cuts(fsdd_manifests):
    return load_labelled_set(fsdd_manifests["test"], "speaker", max_utts=6, seed=3).cuts


def test_cached_batched_features_equal_single_utterance_features(cuts):
    up = frozen(0)
    store = F.make_store("memory", up, cuts, batch_size=4, device=CPU)  # batches padded to the longest cut
    lazy = F.make_store("none", up, cuts, batch_size=4, device=CPU)
    ids = [c.id for c in cuts]
    for cut, cached, fly in zip(cuts, store.load(ids), lazy.load(ids)):
        alone = F.extract_batch(up, [cut], CPU)[0]  # (L, T, D), no padding at all
        assert cached.shape == alone.shape == (up.num_layers, int(up.upstream.frame_lengths(
            torch.tensor([round(cut.duration * 16000)]))[0]), up.embed_dim)
        torch.testing.assert_close(cached, alone, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fly, alone, rtol=1e-4, atol=1e-4)


def test_disk_cache_is_reused_and_keyed_by_weights_and_cuts(cuts, tmp_path, monkeypatch):
    up = frozen(0)
    first = F.make_store("disk", up, cuts, batch_size=4, device=CPU, cache_dir=tmp_path,
                         upstream_key=F.fingerprint(up))
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again although they are cached")

    monkeypatch.setattr(F, "extract_all", no_extraction)
    again = F.make_store("disk", frozen(0), cuts, batch_size=4, device=CPU, cache_dir=tmp_path,
                         upstream_key=F.fingerprint(frozen(0)))
    ids = [c.id for c in cuts]
    for a, b in zip(first.load(ids), again.load(ids)):
        assert torch.equal(a, b)
    assert F.fingerprint(frozen(1)) != F.fingerprint(up)  # other weights: another cache file
    key = F.cache_file(tmp_path, "k", cuts)
    assert key == F.cache_file(tmp_path, "k", cuts[::-1])  # order does not matter
    assert key != F.cache_file(tmp_path, "k", cuts[:-1])  # the set of cuts does
    assert key != F.cache_file(tmp_path, "k", [*cuts[:-1], cuts[-1].truncate(duration=0.1)])  # and their span
    with pytest.raises(AssertionError, match="extracted again"):
        F.make_store("disk", up, cuts[:2], batch_size=4, device=CPU, cache_dir=tmp_path, upstream_key="k")


def test_disk_cache_needs_a_directory_and_unknown_modes_fail(cuts):
    with pytest.raises(ValueError, match="needs a cache_dir"):
        F.make_store("disk", frozen(0), cuts, batch_size=4, device=CPU)
    with pytest.raises(ValueError, match="memory, disk, none"):
        F.make_store("ram", frozen(0), cuts, batch_size=4, device=CPU)  # type: ignore[arg-type]


def test_a_cut_shorter_than_the_receptive_field_is_named(cuts):
    short = cuts[0].truncate(duration=0.002)  # 16 samples at 8 kHz -> 32 at 16 kHz < 400
    with pytest.raises(ValueError, match=f"{short.id} \\(32 samples\\)"):
        F.extract_batch(frozen(0), [cuts[1], short], CPU)
