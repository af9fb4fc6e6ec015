"""speechssl2 upstreams inside ESPnet: the frontend alone, and a tiny ESPnet ASR model built by name."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import soundfile as sf
import torch
import yaml

from speechssl2.espnet.frontend import SpeechSSL2Frontend
from speechssl2.models import build_upstream
from speechssl2.models.io.native import save_upstream

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_upstream(build_upstream({"name": "hubert_tiny"}), tmp_path_factory.mktemp("ckpt") / "hubert_tiny.pt")


def fsdd_batch(fsdd_dir: Path, names: List[str]) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
    """Zero-padded 8 kHz waveforms (B, S), lengths (B,), transcripts (digit words)."""
    waves = [torch.from_numpy(sf.read(fsdd_dir / f"{n}.wav", dtype="float32")[0]) for n in names]
    lengths = torch.tensor([len(w) for w in waves])
    return torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths, [DIGITS[int(n[0])] for n in names]


def test_one_layer_is_that_hidden_state_and_the_mixture_learns(checkpoint, fsdd_dir):
    wav, lengths, _ = fsdd_batch(fsdd_dir, ["0_jackson_0", "7_theo_3"])
    upstream = SpeechSSL2Frontend(str(checkpoint), layer=1, fs=16000).upstream.upstream
    with torch.no_grad():
        ref = upstream(wav, lengths)
    one = SpeechSSL2Frontend(str(checkpoint), layer=1, fs=16000)
    feats, frames = one(wav, lengths)
    assert torch.equal(frames, ref.lengths)
    torch.testing.assert_close(feats, ref.hidden_states[1])

    mixed = SpeechSSL2Frontend(str(checkpoint), fs=16000)
    out, _ = mixed(wav, lengths)
    assert out.shape == (2, int(frames.max()), mixed.output_size())
    out.pow(2).mean().backward()
    assert mixed.featurizer.layer_sum.weights.grad.abs().sum() > 0
    assert all(p.grad is None for p in mixed.upstream.parameters()), "frozen upstream got gradients"


def test_fine_tuned_upstream_gets_gradients_and_reloads_its_weights(checkpoint, fsdd_dir):
    wav, lengths, _ = fsdd_batch(fsdd_dir, ["3_nicolas_5"])
    front = SpeechSSL2Frontend(str(checkpoint), layer=-1, freeze=False, fs=8000).train()
    feats, frames = front(wav, lengths)
    expected = front.upstream.frame_lengths(torch.tensor([(int(lengths[0]) * 2)]))
    assert torch.equal(frames, expected), "8 kHz input is resampled to 16 kHz before the upstream"
    feats.sum().backward()
    assert front.upstream.encoder.layers[-1].parameters().__next__().grad is not None
    before = {k: v.clone() for k, v in front.upstream.state_dict().items()}
    with torch.no_grad():
        for p in front.upstream.parameters():
            p.zero_()
    front.reload_pretrained_parameters()
    for key, value in front.upstream.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_layer_out_of_range_names_the_checkpoint(checkpoint):
    with pytest.raises(ValueError, match=r"layer 7 out of range for .*hubert_tiny.pt \(3 hidden states"):
        SpeechSSL2Frontend(str(checkpoint), layer=7)


@pytest.fixture(scope="module")
def asr_task():
    """``espnet2.tasks.asr.ASRTask`` with our frontend registered; nltk may not download on import."""
    with pytest.MonkeyPatch.context() as patch:
        import nltk

        def refuse(*args, **kwargs):
            return False  # g2p_en (imported by ESPnet's tokenizers) asks for corpora at import time

        patch.setattr(nltk, "download", refuse)
        from espnet2.tasks.asr import ASRTask

    from speechssl2.espnet import register

    register()
    return ASRTask


@pytest.mark.slow
def test_espnet_ctc_attention_model_builds_by_name_and_its_loss_falls(asr_task, checkpoint, fsdd_dir, tmp_path):
    """The config an ESPnet user writes, parsed by ESPnet's own parser, builds and trains."""
    tokens = ["<blank>", "<unk>", *sorted(set("".join(DIGITS))), "<sos/eos>"]
    config = {
        "frontend": "speechssl2",
        "frontend_conf": {"checkpoint": str(checkpoint), "fs": 8000, "freeze": True},
        "normalize": None,
        "encoder": "transformer",
        "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64, "num_blocks": 1,
                         "input_layer": "linear", "dropout_rate": 0.0},
        "decoder": "transformer",
        "decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1, "dropout_rate": 0.0},
        "model_conf": {"ctc_weight": 0.5, "report_cer": False, "report_wer": False},
        "token_list": tokens,
    }
    (tmp_path / "asr.yaml").write_text(yaml.safe_dump(config))
    args = asr_task.get_parser().parse_args(["--config", str(tmp_path / "asr.yaml"), "--output_dir", str(tmp_path)])
    torch.manual_seed(0)
    model = asr_task.build_model(args)
    assert isinstance(model.frontend, SpeechSSL2Frontend)

    names = ["0_jackson_0", "1_theo_1", "2_nicolas_2", "5_george_4"]
    wav, lengths, words = fsdd_batch(fsdd_dir, names)
    ids = [torch.tensor([tokens.index(c) for c in w]) for w in words]
    text = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=-1)
    text_lengths = torch.tensor([len(i) for i in ids])
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in model.frontend.upstream.parameters())
    optimizer = torch.optim.Adam(trainable, lr=2e-3)
    losses = []
    model.train()
    for _ in range(8):
        loss, stats, _ = model(speech=wav, speech_lengths=lengths, text=text, text_lengths=text_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert stats["loss_ctc"] is not None and stats["loss_att"] is not None
    assert sum(losses[-2:]) / 2 < 0.8 * losses[0], losses
    assert model.frontend.featurizer.layer_sum.weights.grad.abs().sum() > 0
