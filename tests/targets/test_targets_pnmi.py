"""PNMI / purity formulas and the frame references they are measured against."""
import numpy as np
import pytest
from lhotse import MonoCut, Recording, SupervisionSegment
from lhotse.supervision import AlignmentItem

from speechssl2.targets.pnmi import Contingency, cluster_metrics, frame_references


def entropy(p):
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def test_bijection_gives_one_and_relabelling_changes_nothing():
    counts = Contingency()
    counts.update(["a", "b", "c", "a", None], np.array([7, 3, 5, 7, 3]))
    m = cluster_metrics(counts.table()[0])
    assert m["pnmi"] == pytest.approx(1.0) and m["phone_purity"] == pytest.approx(1.0)
    assert m["cluster_purity"] == pytest.approx(1.0) and m["num_frames"] == 4  # the None frame is left out


def test_independent_labels_give_zero_and_marginal_purities():
    p_y, p_z = np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.6, 0.3])
    m = cluster_metrics(np.outer(p_y, p_z) * 1000)
    assert m["pnmi"] == pytest.approx(0.0, abs=1e-12)
    assert m["phone_purity"] == pytest.approx(p_y.max())  # every cluster has the same best phone
    assert m["cluster_purity"] == pytest.approx(p_z.max())


def test_mutual_information_matches_entropy_identity():
    table = np.random.default_rng(0).integers(0, 20, size=(6, 9)).astype(float)
    m = cluster_metrics(table)
    mi = entropy(table.sum(1)) + entropy(table.sum(0)) - entropy(table.ravel())
    assert m["mutual_information_nats"] == pytest.approx(mi)
    assert m["pnmi"] == pytest.approx(mi / entropy(table.sum(1)))
    assert m["phone_purity"] == pytest.approx(table.max(0).sum() / table.sum())
    assert m["cluster_purity"] == pytest.approx(table.max(1).sum() / table.sum())


def test_padding_labels_are_ignored_and_lengths_checked():
    counts = Contingency()
    counts.update(["a", "a", "b"], np.array([1, -100, 2]))
    assert sum(counts.counts.values()) == 2
    with pytest.raises(ValueError, match="3 references for 2 labels"):
        counts.update(["a", "a", "b"], np.array([1, 2]))
    with pytest.raises(ValueError, match="nothing to measure"):
        cluster_metrics(Contingency().table()[0])


def make_cut(alignment=None, text="seven"):
    rec = Recording(id="r", sources=[], sampling_rate=16000, num_samples=16000, duration=1.0)
    sup = SupervisionSegment(id="s", recording_id="r", start=0.0, duration=0.5, text=text, alignment=alignment)
    return MonoCut(id="c", start=0.0, duration=1.0, channel=0, recording=rec, supervisions=[sup])


def test_frame_references_use_frame_centres():
    phones = [AlignmentItem("s", 0.0, 0.1), AlignmentItem("eh", 0.1, 0.1)]
    cut = make_cut({"phone": phones})
    # frame i is centred at 12.5 ms + 20 ms * i
    assert frame_references(cut, 12, "alignment:phone") == ["s"] * 5 + ["eh"] * 5 + [None] * 2
    refs = frame_references(cut, 49, "text")
    assert refs[:25] == ["seven"] * 25 and set(refs[25:]) == {None}  # supervision ends at 0.5 s


def test_bad_reference_requests_are_named():
    with pytest.raises(ValueError, match="cut 'c': supervision 's' has no 'phone' alignment"):
        frame_references(make_cut(), 10, "alignment:phone")
    with pytest.raises(ValueError, match="unknown reference 'words'"):
        frame_references(make_cut(), 10, "words")
    with pytest.raises(ValueError, match="supervision 's' has no text"):
        frame_references(make_cut(text=None), 10, "text")
