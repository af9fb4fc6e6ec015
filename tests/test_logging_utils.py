"""One log format to stderr and a file; tensorboard scalars really land in the event file."""
from __future__ import annotations

import logging

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from speechssl2.logging_utils import TensorBoard, progress, setup_logging


def test_setup_logging_writes_the_shared_format_to_the_log_file(tmp_path):
    setup_logging(tmp_path / "logs" / "stage.log")
    logging.getLogger("speechssl2.test").info("hello %d", 3)
    line = (tmp_path / "logs" / "stage.log").read_text().strip()
    assert line.endswith("INFO [speechssl2.test] hello 3")


def test_tensorboard_scalars_are_readable_back(tmp_path):
    tb = TensorBoard(tmp_path)
    for step in range(3):
        tb.scalars({"loss": 1.0 / (step + 1)}, step, prefix="train/")
    tb.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [round(e.value, 4) for e in events.Scalars("train/loss")] == [1.0, 0.5, 0.3333]
    TensorBoard(tmp_path / "off", enabled=False).scalars({"loss": 1.0}, 0)  # rank > 0: no writer, no files
    assert not (tmp_path / "off").exists()


def test_progress_is_silent_without_a_terminal_and_yields_everything(capsys):
    assert list(progress(range(5), desc="x")) == [0, 1, 2, 3, 4]
    assert "x:" not in capsys.readouterr().err  # pytest's stderr is not a tty
    assert list(progress(range(2), desc="forced", disable=False)) == [0, 1]
    assert "forced" in capsys.readouterr().err
