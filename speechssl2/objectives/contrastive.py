"""Pure numerics of the wav2vec 2.0 contrastive task: distractor sampling and logits.

Masked steps are handled flattened (N = number of masked frames in the batch, ordered
by utterance then time), so utterances may have different numbers of masked frames.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from speechssl2.objectives.common import unit


def sample_negatives(
    time_mask: Tensor, num_negatives: int, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """Distractor indices for every masked step, drawn from the *other* masked steps of its utterance.

    time_mask: (B, T) bool, True = masked. Returns ``index`` (N, K) long into the flattened
    masked steps (``time_mask.nonzero()`` order) and ``valid`` (N, K) bool, False where the
    utterance has no other masked step to draw from. Uniform with replacement, never the
    step itself; vectorized (no loop over the batch).
    """
    counts = time_mask.sum(dim=1)  # (B,)
    utt = time_mask.nonzero(as_tuple=True)[0]  # (N,) utterance of each masked step
    offsets = torch.cumsum(counts, 0) - counts  # (B,) first flat index of each utterance
    start = offsets[utt]  # (N,)
    rank = torch.arange(utt.numel(), device=time_mask.device) - start  # (N,) position within its utterance
    others = (counts[utt] - 1).unsqueeze(1)  # (N, 1) how many other masked steps exist
    draw = torch.rand(utt.numel(), num_negatives, device=time_mask.device, generator=generator)
    pick = torch.floor(draw * others.clamp(min=1)).long()  # (N, K) in [0, others)
    pick = pick + (pick >= rank.unsqueeze(1)).long()  # skip the step itself
    valid = (others > 0).expand(-1, num_negatives)
    return start.unsqueeze(1) + pick * valid, valid


def contrastive_logits(
    context: Tensor, positives: Tensor, index: Tensor, valid: Tensor, temperature: float
) -> Tensor:
    """Cosine-similarity logits / kappa, the positive in column 0.

    context, positives: (N, F); index, valid: (N, K) as ``sample_negatives`` returns them
    (distractor k of step n is ``positives[index[n, k]]``). Distractors that are invalid or
    equal to their positive (same quantized vector) get -inf. ``F.cosine_similarity``'s
    formula, the positives normalised once before the K-fold gather and multiplied as a
    batch: broadcasting the context over the gathered candidates cost a small model most of
    this function.
    """
    units = unit(positives.float())  # (N, F)
    targets = torch.cat([units.unsqueeze(1), units[index]], dim=1)  # (N, 1+K, F)
    logits = torch.bmm(targets, unit(context.float()).unsqueeze(-1)).squeeze(-1) / temperature
    with torch.no_grad():
        same = (positives[index] == positives.unsqueeze(1)).all(dim=-1)  # (N, K)
    drop = torch.cat([torch.zeros_like(valid[:, :1]), same | ~valid], dim=1)  # (N, 1+K)
    return logits.masked_fill(drop, float("-inf"))


def contrastive_accuracy(logits: Tensor) -> float:
    """Fraction of steps whose positive strictly outscores every distractor."""
    if logits.shape[0] == 0:
        return 0.0
    best_negative = logits[:, 1:].max(dim=1).values if logits.shape[1] > 1 else logits[:, 0] - 1
    return (logits[:, 0] > best_negative).float().mean().item()
