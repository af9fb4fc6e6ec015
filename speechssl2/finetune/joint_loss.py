"""Joiner + RNN-T loss in chunks of the batch: bounds the ``(B, T, U + 1, V)`` joint tensor.

torchaudio's ``rnnt_loss`` needs the full logits and keeps their gradient, also
``(B, T, U + 1, V)``, until backward; with the joiner's ``tanh`` activations ``(B, T,
U + 1, J)`` this is what limits the batch size of transducer fine-tuning (LibriSpeech
16 s utterances, 500 BPE units: about 1 GB per utterance at ``J = 512``). Here the
forward pass runs the joiner and the loss for ``chunk`` utterances at a time, each
chunk trimmed to its own longest ``T`` and ``U``, and computes that chunk's gradients
with respect to the projected encoder and prediction outputs and the joiner's output
layer at once; only those gradients (``(B, T, J)``, ``(B, U + 1, J)`` and the layer's
weights) are kept for backward. Peak memory is then one chunk's joint tensor, the
gradients are those of the unchunked loss (``tests/finetune/test_joint_loss.py``), and the
price is that the loss cannot be differentiated twice.
"""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from speechssl2.finetune.heads import RNNTLoss


def joint_logits(enc: Tensor, pred: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """The joiner on projected, broadcastable ``(..., J)`` inputs: ``Linear(tanh(enc + pred))`` -> ``(..., V)``."""
    return nn.functional.linear(torch.tanh(enc + pred), weight, bias)


def _chunk_loss(enc: Tensor, pred: Tensor, weight: Tensor, bias: Tensor, lengths: Tensor, targets: Tensor,
                target_lens: Tensor, criterion: RNNTLoss) -> Tensor:
    """Summed RNN-T loss of a few utterances, trimmed to their own longest T and U."""
    frames, labels = int(lengths.max()), int(target_lens.max())
    logits = joint_logits(enc[:, :frames, None], pred[:, None, : labels + 1], weight, bias).float()  # (b, T, U + 1, V)
    return criterion(logits, lengths, targets[:, :labels], target_lens) * len(lengths)


class _ChunkedJointLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, enc: Tensor, pred: Tensor, weight: Tensor, bias: Tensor, lengths: Tensor,  # type: ignore[override]
                targets: Tensor, target_lens: Tensor, chunk: int, criterion: RNNTLoss) -> Tensor:
        inputs = [t.detach().requires_grad_() for t in (enc, pred, weight, bias)]
        grads: List[Optional[Tensor]] = [torch.zeros_like(t) for t in inputs]
        total = enc.new_zeros((), dtype=torch.float32)
        for start in range(0, len(lengths), chunk):
            part = slice(start, start + chunk)
            with torch.enable_grad():
                loss = _chunk_loss(inputs[0][part], inputs[1][part], inputs[2], inputs[3], lengths[part],
                                   targets[part], target_lens[part], criterion)
                g_enc, g_pred, g_weight, g_bias = torch.autograd.grad(loss, inputs)
            grads[0][part] += g_enc[part]  # type: ignore[index]
            grads[1][part] += g_pred[part]  # type: ignore[index]
            grads[2] += g_weight  # type: ignore[operator]
            grads[3] += g_bias  # type: ignore[operator]
            total = total + loss.detach()
        ctx.save_for_backward(*grads)  # type: ignore[arg-type]
        return total

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:  # type: ignore[override]
        return tuple(g * grad_out for g in ctx.saved_tensors) + (None,) * 5


def joint_rnnt_loss(joiner: nn.Module, enc: Tensor, pred: Tensor, lengths: Tensor, targets: Tensor,
                    target_lens: Tensor, criterion: RNNTLoss, chunk: int = 0) -> Tensor:
    """Mean RNN-T loss over utterances of ``enc (B, T, D_enc)``, ``pred (B, U + 1, D_pred)``.

    ``chunk`` = 0 builds the whole joint tensor; ``chunk`` > 0 bounds it to that many
    utterances (training) with the same value and gradients.
    """
    enc_j, pred_j = joiner.encoder_proj(enc), joiner.predictor_proj(pred)  # (B, T, J), (B, U + 1, J)
    out = joiner.output
    if chunk <= 0 or chunk >= len(lengths):
        return _chunk_loss(enc_j, pred_j, out.weight, out.bias, lengths, targets, target_lens, criterion) / len(lengths)
    if not torch.is_grad_enabled():
        total = sum(_chunk_loss(enc_j[s : s + chunk], pred_j[s : s + chunk], out.weight, out.bias,
                                lengths[s : s + chunk], targets[s : s + chunk], target_lens[s : s + chunk], criterion)
                    for s in range(0, len(lengths), chunk))
        return total / len(lengths)  # type: ignore[operator]
    total = _ChunkedJointLoss.apply(enc_j, pred_j, out.weight, out.bias, lengths, targets, target_lens, chunk,
                                    criterion)
    return total / len(lengths)
