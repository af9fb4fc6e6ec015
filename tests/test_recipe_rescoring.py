"""Stage 6 picks each decoder's rescoring LM: the Transformer LM for rescore_weight, the n-gram for rescore_ngram."""
from __future__ import annotations

import subprocess
from pathlib import Path

from test_librispeech_recipe import STUB_PYTHON, read_calls

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO / "egs" / "fsdd" / "ssl1"


def test_ngram_rescoring_decoder_gets_lm_dir_and_no_transformer_lm(tmp_path):
    bin_dir, recipe, work = tmp_path / "bin", tmp_path / "recipe", tmp_path / "work"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(STUB_PYTHON)
    (bin_dir / "python").chmod(0o755)
    recipe.mkdir()
    for name in ("ssl.sh", "cmd.sh", "conf", "utils"):
        (recipe / name).symlink_to(FSDD / name)
    (recipe / "path.sh").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    for f in ("exp/lm_word3_char/lm.bin", "exp/lm_transformer_char/checkpoint_last.pt"):
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        (work / f).write_text("")
    res = subprocess.run(["bash", "ssl.sh", "--stage", "6", "--stop_stage", "6", "--work_dir", str(work),
                          "--finetune_type", "transducer", "--train_set", "train", "--test_sets", "test",
                          "--decoders", "transducer_beam_rescore transducer_beam_ngram_rescore"],
                         cwd=recipe, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    calls = {Path(c.config).stem: c.sets for c in read_calls(bin_dir / "calls") if c.module == "decode"}
    assert calls["decode_transducer_beam_rescore"]["rescore_lm"] == f"{work}/exp/lm_transformer_char/checkpoint_last.pt"
    assert "rescore_lm" not in calls["decode_transducer_beam_ngram_rescore"]
    assert calls["decode_transducer_beam_ngram_rescore"]["lm_dir"] == f"{work}/exp/lm_word3_char"
    (work / "exp/lm_word3_char/lm.bin").unlink()
    res = subprocess.run(["bash", "ssl.sh", "--stage", "6", "--stop_stage", "6", "--work_dir", str(work),
                          "--finetune_type", "transducer", "--decoders", "transducer_beam_ngram_rescore"],
                         cwd=recipe, capture_output=True, text=True)
    assert "no n-gram LM in" in res.stdout and "skipping transducer_beam_ngram_rescore" in res.stdout
