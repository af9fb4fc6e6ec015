"""results.md tables, layer-weight centre, and the per-upstream layer-weight figure."""
from __future__ import annotations

import pytest

from speechssl2.probe.report import layer_centre, layer_weights_figure, results_markdown, write_reports

DOC = {
    "tasks": {
        "sid": {"metric": "accuracy", "higher_is_better": True, "chance": 16.666, "label": "speaker",
                "downstream": "utterance_classifier", "train_utts": 10, "test_utts": 5, "epochs": 2},
        "asr": {"metric": "wer", "higher_is_better": False, "chance": 90.0, "label": "text",
                "downstream": "ctc_asr", "train_utts": 10, "test_utts": 5, "epochs": 2},
    },
    "upstreams": [],
    "results": {
        "up|a": {"sid": {"value": 80.0, "layer_weights": [0.6, 0.3, 0.1]},
                 "asr": {"value": 25.125, "layer_weights": [0.1, 0.3, 0.6]}},
        "up_b": {"sid": {"value": 50.0, "layer_weights": [0.2, 0.2, 0.2, 0.2, 0.2]},
                 "asr": {"value": 100.0, "layer_weights": [0.0, 0.0, 0.0, 0.0, 1.0]}},
    },
}


def test_layer_centre():
    assert layer_centre([1.0, 0.0, 0.0]) == 0.0
    assert layer_centre([0.0, 0.0, 1.0]) == 1.0
    assert layer_centre([0.6, 0.3, 0.1]) == pytest.approx(0.25)
    assert layer_centre([0.25] * 4) == pytest.approx(0.5)


def test_markdown_has_a_chance_row_and_one_row_per_upstream():
    lines = results_markdown(DOC).splitlines()
    assert "| upstream | sid accuracy % ↑ | asr WER % ↓ |" in lines
    assert "| chance (majority label) | 16.67 | 90.00 |" in lines
    assert "| up\\|a | 80.00 | 25.12 |" in lines  # a '|' in a tag must not break the table
    assert "| up_b | 50.00 | 100.00 |" in lines
    assert "| up\\|a | 0.25 | 0.75 |" in lines  # layer-weight centres
    assert "| up_b | 0.50 | 1.00 |" in lines


def test_figure_has_one_panel_per_upstream_and_one_line_per_task(tmp_path):
    fig = layer_weights_figure(DOC)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["up|a", "up_b"]
    for ax, tag in zip(axes, DOC["results"]):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"sid", "asr", "uniform"}
        for task in ("sid", "asr"):
            assert list(lines[task].get_ydata()) == DOC["results"][tag][task]["layer_weights"]
        assert lines["uniform"].get_ydata()[0] == pytest.approx(1 / len(DOC["results"][tag]["sid"]["layer_weights"]))
    paths = write_reports(DOC, tmp_path)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["markdown"].read_text(encoding="utf-8") == results_markdown(DOC)
