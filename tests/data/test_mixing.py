"""WavLM utterance mixing / noise: energy ratio, overlap, lengths, determinism, real noise files."""
import numpy as np
import pytest
import soundfile as sf
import torch

from speechssl2.data.mixing import UtteranceMixer
from speechssl2.registry import RegistryError


def _batch(seed=0, batch=6, max_len=8000):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max_len // 2, max_len + 1, (batch,), generator=gen)
    lengths[0] = max_len
    audio = torch.randn(batch, max_len, generator=gen) * torch.rand(batch, 1, generator=gen).add(0.1)
    padding = torch.arange(max_len)[None, :] >= lengths[:, None]
    audio[padding] = 0.0
    targets = torch.randint(0, 10, (batch, 25), generator=gen)
    return {"audio": audio, "audio_lens": lengths, "padding_mask": padding, "targets": targets, "sample_rate": 16000}


def _check_mixture(before, after, snr_db):
    """Every changed utterance: one contiguous segment <= 50 %, ratio in range, padding untouched."""
    changed = 0
    for i in range(before["audio"].shape[0]):
        length = int(before["audio_lens"][i])
        diff = after["audio"][i] - before["audio"][i]
        assert not diff[length:].any()  # padding stays zero
        where = diff.nonzero().flatten()
        if where.numel() == 0:
            continue
        changed += 1
        start, end = int(where[0]), int(where[-1]) + 1
        assert end - start <= 0.5 * length
        ratio = before["audio"][i, :length].pow(2).mean() / diff[start:end].pow(2).mean()
        assert snr_db[0] - 1e-3 <= 10 * torch.log10(ratio).item() <= snr_db[1] + 1e-3
    return changed


def test_utterance_mixing_properties():
    before = _batch()
    mixer = UtteranceMixer(prob=1.0, seed=3)
    after = mixer(before)
    assert _check_mixture(before, after, (-5, 5)) == 6
    assert torch.equal(after["audio_lens"], before["audio_lens"])
    assert torch.equal(after["targets"], before["targets"])
    assert after["audio"].shape == before["audio"].shape


def _mixed(before, **kwargs):
    torch.manual_seed(0)  # the mixer keys each batch on one draw from torch's generator
    return UtteranceMixer(prob=0.2, **kwargs)(before)["audio"]


def test_mix_probability_and_determinism():
    before = _batch(batch=200, max_len=800)
    a = _mixed(before, seed=11, rank=0)
    assert torch.equal(a, _mixed(before, seed=11, rank=0))
    changed = (a != before["audio"]).any(dim=1).float().mean().item()
    assert 0.12 < changed < 0.28  # 200 draws of p = 0.2: standard error 0.028
    assert not torch.equal(a, _mixed(before, seed=12, rank=0))
    assert not torch.equal(a, _mixed(before, seed=11, rank=1))  # DDP ranks mix differently


class _MixedCopies(torch.utils.data.Dataset):
    """Four copies of one batch, each mixed in whichever loader process loads it."""

    def __init__(self, mixer):
        self.mixer, self.batch = mixer, _batch(batch=4, max_len=400)

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.mixer(self.batch)["audio"]


def _two_epochs(seed, num_workers):
    """(epoch, item, B, S) audio from two passes over a loader, as the trainer makes them."""
    torch.manual_seed(seed)
    dataset = _MixedCopies(UtteranceMixer(prob=1.0, seed=0, rank=0))
    context = "fork" if num_workers else None
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers,
                                         multiprocessing_context=context)
    return torch.stack([torch.stack(list(loader)) for _ in range(2)])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_workers_and_epochs_mix_differently_and_replay_from_the_seed(num_workers):
    """With 2 workers, items 0 and 2 come from worker 0, 1 and 3 from worker 1."""
    mixes = _two_epochs(3, num_workers).flatten(2)  # (2, 4, B * S)
    assert len({tuple(m.tolist()) for m in mixes.flatten(0, 1)}) == 8  # every batch of both epochs differs
    assert torch.equal(mixes, _two_epochs(3, num_workers).flatten(2))
    assert not torch.equal(mixes, _two_epochs(4, num_workers).flatten(2))


def test_noise_mixing_from_real_files(noise_dir):
    before = _batch(batch=4)
    mixer = UtteranceMixer.from_config({"prob": 1.0, "noise_dir": str(noise_dir), "noise_prob": 1.0,
                                        "snr_db": [-2, 2], "seed": 0})
    after = mixer(before)
    assert _check_mixture(before, after, (-2, 2)) == 4
    with pytest.raises(ValueError, match="sample_rate"):
        mixer({k: v for k, v in before.items() if k != "sample_rate"})


def test_noise_is_resampled_to_the_batch_rate(tmp_path):
    """An 8 kHz 440 Hz tone must still be 440 Hz once mixed into 16 kHz audio."""
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
    before = _batch(batch=8)
    before["audio"].zero_()
    before["audio"][:, :4000] += 0.01  # a quiet DC primary so the ratio is defined
    after = UtteranceMixer(prob=1.0, noise_dir=str(tmp_path), noise_prob=1.0, seed=1)(before)
    diffs = after["audio"] - before["audio"]  # (B, S)
    longest = max(range(8), key=lambda i: int(diffs[i].count_nonzero()))
    where = diffs[longest].nonzero().flatten()
    seg = diffs[longest, int(where[0]) : int(where[-1]) + 1]
    assert seg.numel() > 1000
    peak_hz = torch.fft.rfft(seg.double()).abs().argmax().item() * 16000 / seg.numel()
    assert abs(peak_hz - 440) < 16000 / seg.numel() + 1


def test_bad_configs_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        UtteranceMixer(noise_dir=str(tmp_path))
    with pytest.raises(ValueError, match="must be in"):
        UtteranceMixer(prob=1.5)
    with pytest.raises(RegistryError, match="unknown argument 'snr'"):
        UtteranceMixer.from_config({"snr": [-5, 5]})
    with pytest.raises(ValueError, match=r"waveforms \(B, S\)"):
        UtteranceMixer()({"audio": torch.zeros(2, 10, 80), "audio_lens": torch.tensor([10, 10])})
