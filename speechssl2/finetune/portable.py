"""Fine-tuned checkpoints that rebuild without the files their config names.

A fine-tuning config names its upstream and tokenizer by path (a pre-training checkpoint,
a tokenizer directory). The upstream's weights are in the fine-tuned state dict anyway, so
the checkpoint keeps the upstream's architecture spec and the tokenizer's own spec in their
place (fairseq keeps ``w2v_args`` for the same reason): decoding needs the checkpoint alone,
even after the pre-training run or the data directory is gone.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from speechssl2.finetune.encoder import FineTuneEncoder
from speechssl2.tokenizers.base import TokenizerBase


def self_contained_spec(spec: Mapping[str, Any], encoder: FineTuneEncoder, tokenizer: TokenizerBase) -> Dict[str, Any]:
    """``spec`` (a ctc/transducer model spec) with the upstream and tokenizer paths replaced by specs."""
    return {**spec, "encoder": {**spec["encoder"], "upstream": dict(encoder.upstream.spec)},
            "tokenizer": tokenizer.to_spec()}
