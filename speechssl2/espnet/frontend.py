"""speechssl2 upstreams as an ESPnet2 ASR frontend (``frontend: speechssl2`` in an ESPnet config).

ESPnet hands a frontend raw waveforms ``(B, S)`` at the corpus sample rate ``fs``; this
one resamples them to the upstream's rate, runs any checkpoint ``load_pretrained``
reads (speechssl2, HF directory, fairseq, UniSpeech WavLM) and returns either one hidden
layer or the SUPERB-style learned softmax mixture of all layers (``Featurizer``).

``freeze: true`` keeps the upstream in eval mode without gradients (``FrozenUpstream``),
as SUPERB does; ``freeze: false`` fine-tunes it with the ASR model. ESPnet's
``initialize()`` re-initializes every parameter of a model when ``init`` is set and then
calls ``reload_pretrained_parameters()`` on the frontend, so we keep a copy of the loaded
weights to put back.
"""
from __future__ import annotations

import copy
import logging
from typing import Optional, Tuple

import torch
import torchaudio.functional as AF
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torch import Tensor

from speechssl2.models.io.detect import load_pretrained
from speechssl2.probe.featurizer import Featurizer, FrozenUpstream

log = logging.getLogger(__name__)


class SpeechSSL2Frontend(AbsFrontend):
    """``(wav (B, S), lengths (B,)) -> (features (B, T, D), frames (B,))`` from a pre-trained upstream.

    ``layer``: None mixes all hidden states with learned weights; an int picks
    ``hidden_states[layer]`` (0 = encoder input, -1 = last layer).
    """

    def __init__(self, checkpoint: str, source: Optional[str] = None, layer: Optional[int] = None,
                 freeze: bool = True, layer_norm: bool = True, fs: int = 16000,
                 upstream_fs: int = 16000) -> None:
        super().__init__()
        upstream, _ = load_pretrained(checkpoint, source)
        self.num_layers = len(upstream.encoder.layers) + 1
        if layer is not None and not -self.num_layers <= layer < self.num_layers:
            raise ValueError(f"speechssl2 frontend: layer {layer} out of range for {checkpoint} "
                             f"({self.num_layers} hidden states: 0..{self.num_layers - 1} or negative)")
        self.layer, self.freeze, self.fs, self.upstream_fs = layer, freeze, int(fs), int(upstream_fs)
        self.upstream = FrozenUpstream(upstream) if freeze else upstream
        self.featurizer = Featurizer(self.num_layers, layer_norm) if layer is None else None
        self.pretrained_params = copy.deepcopy(upstream.state_dict())
        self._output_size: int = upstream.embed_dim

    def output_size(self) -> int:
        return self._output_size

    def forward(self, input: Tensor, input_lengths: Tensor) -> Tuple[Tensor, Tensor]:  # noqa: A002 (ESPnet's name)
        wav, lengths = input, input_lengths
        if self.fs != self.upstream_fs:
            wav = AF.resample(wav, self.fs, self.upstream_fs)  # (B, S')
            lengths = torch.div(lengths * self.upstream_fs + self.fs - 1, self.fs, rounding_mode="floor")
            lengths = lengths.clamp(max=wav.shape[1])
        hidden, frames = self._hidden(wav, lengths)  # (B, L, T, D), (B,)
        if self.featurizer is None:
            return hidden[:, self.layer], frames
        return self.featurizer(hidden), frames

    def _hidden(self, wav: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        if self.freeze:
            return self.upstream(wav, lengths)
        out = self.upstream(wav, lengths)
        return torch.stack(out.hidden_states, dim=1), out.lengths

    def layer_weights(self) -> Optional[list]:
        """Softmax weight per layer after training (None with a fixed ``layer``)."""
        return self.featurizer.layer_weights() if self.featurizer is not None else None

    def reload_pretrained_parameters(self) -> None:
        """Put the checkpoint's weights back after ESPnet's ``initialize()`` overwrote them."""
        target = self.upstream.upstream if self.freeze else self.upstream
        target.load_state_dict(self.pretrained_params)
        log.info("speechssl2 frontend: pre-trained upstream parameters reloaded")
