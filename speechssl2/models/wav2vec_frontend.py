"""The wav2vec (2019) encoder network as a frontend: 5 convs, kernels (10,8,4,4,4), strides (5,4,2,2,2).

512 channels, GroupNorm with one group per block (normalizing over channels and time,
which makes it invariant to input scale and offset), ReLU: 30 ms field, 10 ms hop at
16 kHz. It is the conv frontend with other numbers, so it reuses that class.
"""
from __future__ import annotations

from speechssl2.models.conv_frontend import ConvFrontend
from speechssl2.registry import FRONTENDS


@FRONTENDS.register("wav2vec")
def wav2vec_frontend(channels: int = 512, conv_bias: bool = False, log_compression: bool = False) -> ConvFrontend:
    """The 2019 wav2vec feature encoder; ``channels`` shrinks it for tests; log(|z| + 1) on request."""
    return ConvFrontend(
        channels=[channels] * 5,
        kernels=[10, 8, 4, 4, 4],
        strides=[5, 4, 2, 2, 2],
        norm_mode="utterance_norm",
        conv_bias=conv_bias,
        activation="relu",
        log_compression=log_compression,
    )
