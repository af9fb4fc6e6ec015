"""wav2vec (2019) objective: binary contrastive prediction of the next K encoder frames.

For every valid frame i of an utterance and every step k = o..o+K-1 with i + k still inside
the utterance (a "pair"), a step-specific affine map h_k(c_i) = W_k c_i + b_k of the
context vector scores the true future frame z_{i+k} against N distractors z~ drawn
uniformly, with replacement, from the *other* valid frames of the same utterance (never
padding; the distractors of a target frame are shared by every (i, k) aiming at it, as
in fairseq)::

    loss(i, k) = -log sigmoid(z_{i+k} . h_k(c_i)) - lambda * sum_n log sigmoid(-z~_n . h_k(c_i))

lambda = ``negative_weight`` = 1 weights each sampled distractor once: the paper's
lambda * E[...] with lambda = N = 10. The term ``binary_contrastive`` is the mean of
loss(i, k) over all pairs of the batch (the paper's sum over k and i, normalized by the
number of pairs; ``sample_size`` is that number). wav2vec has no masking: the objective
refuses a non-empty time mask (configure ``masking: {prob: 0.0, span: 1}``).

Collapse guard (all three off by default, which is the paper's and fairseq's objective):
the loss reaches its chance level ln(N + 1) + N ln((N + 1) / N) (3.35 for N = 10) as soon as
every score equals logit(1 / (N + 1)) = -ln N, whatever the frames. The scores have no bias of
their own, so the model can only produce that offset through the part of z that is constant
over an utterance (about 60 % of the variance of the LayerNorm-ed targets at init); and since
the N distractors of a pair push every frame of the utterance the same way, the gradient is
mostly common-mode. From scratch the fastest way down is therefore to make z and c constant
over time, which is what the tiny preset does on FSDD within 5 updates (the temporal share of
z's variance drops 0.38 -> 0.03, accuracy stays at chance). ``center_targets`` subtracts each
utterance's mean target frame (only within-utterance differences tell a positive from its
distractors, so nothing is lost), ``logit_offset`` (-ln N puts zero scores at the chance
level) gives the offset as a constant, and ``score_scale`` (1 / sqrt(C)) keeps the initial
scores of unit-norm-per-channel targets out of saturation.

The first step o is ``step_offset``: 1 by default (the paper's k = 1..K); ``auto`` is
fairseq's default, which the released command keeps: o = ceil(receptive field / hop) of the
feature encoder (fairseq/models/wav2vec/wav2vec.py:L115-120 and L226-237 @3d262bb), 3 for the
wav2vec encoder (465 samples, 160 hop), so no target frame shares input samples with the last
frame the context saw. ``frontend_field_frames`` carries that number from the upstream.

Metrics: ``acc`` (fraction of pairs whose positive outscores all of its distractors; chance
is 1 / (N + 1)) and ``acc_kNN`` per prediction step, NN its distance in frames (``acc_k01`` ...
``acc_k12`` with offset 1, ``acc_k03`` ... ``acc_k14`` with offset 3).
"""
from __future__ import annotations

from typing import Any, Dict, Literal, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.interfaces import ObjectiveOutput, UpstreamOutput
from speechssl2.objectives.common import check_time_mask
from speechssl2.objectives.contrastive import sample_negatives
from speechssl2.registry import OBJECTIVES


def sample_frame_negatives(
    padding_mask: Tensor, num_negatives: int, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """Distractor frames for every target frame, uniform over the other valid frames of its utterance.

    padding_mask: (B, T) bool, True = padding (at the end of each row). Returns ``index``
    (B, T, N) long, frame indices into the same utterance, and ``valid`` (B, T, N) bool,
    False on padding frames and in one-frame utterances (nothing else to draw from).
    """
    keep = ~padding_mask
    flat, ok = sample_negatives(keep, num_negatives, generator)  # (V, N) into the flattened valid frames
    counts = keep.sum(dim=1)  # (B,)
    starts = (torch.cumsum(counts, 0) - counts)[keep.nonzero(as_tuple=True)[0]]  # (V,) flat start of each row
    index = torch.zeros(*padding_mask.shape, num_negatives, dtype=torch.long, device=padding_mask.device)
    valid = torch.zeros_like(index, dtype=torch.bool)
    index[keep] = flat - starts[:, None]  # valid frames come first in a row, so flat offset = frame index
    valid[keep] = ok
    return index, valid


def step_distances(steps: int, offset: int, num_frames: int) -> range:
    """Step indices j whose target i + offset + j can lie inside T frames (fairseq: min(K, T - offset))."""
    return range(max(0, min(steps, num_frames - offset)))


def step_scores(predictions: Tensor, targets: Tensor, negatives: Tensor, lengths: Tensor,
                offset: int = 1) -> Tuple[Tensor, Tensor]:
    """Dot products of every prediction with its positive (column 0) and its distractors.

    predictions: (B, T, K, C) with [b, i, j] = h_k(c_i), k = offset + j; targets: (B, T, C) z;
    negatives: (B, T, N) frame indices of the distractors of each target frame;
    lengths: (B,) valid frames. Returns ``scores`` (B, T, K, 1 + N) and ``pairs`` (B, T, K)
    bool, True where i + k < length (entries outside a pair are 0).
    """
    b, t, steps, c = predictions.shape
    gathered = torch.gather(targets, 1, negatives.reshape(b, -1, 1).expand(-1, -1, c))  # (B, T*N, C)
    candidates = torch.cat([targets.unsqueeze(2), gathered.view(b, t, -1, c)], dim=2)  # (B, T, 1+N, C)
    # Every prediction moved to the frame it aims at (zeros before it), one batched product over the
    # target frames, and the scores moved back: slicing (B, T, K, C) and (B, T, 1+N, C) once per step
    # made autograd allocate, zero and copy both whole for every step.
    shifts = [min(offset + j, t) for j in range(steps)]
    aimed = torch.stack([F.pad(p[:, : t - k], (0, 0, k, 0)) for p, k in zip(predictions.unbind(2), shifts)], dim=2)
    at_target = torch.einsum("bmjc,bmnc->bmjn", aimed, candidates)  # (B, T, K, 1+N), m = i + k
    scores = torch.stack([F.pad(at_target[:, k:, j], (0, 0, 0, k)) for j, k in enumerate(shifts)], dim=2)
    distance = torch.arange(offset, offset + steps, device=lengths.device)  # (K,)
    position = torch.arange(t, device=lengths.device)[None, :, None] + distance
    pairs = position < lengths[:, None, None]  # (B, T, K): target i + k inside the utterance
    return scores, pairs


def binary_contrastive_loss(scores: Tensor, pairs: Tensor, negative_valid: Tensor, negative_weight: float) -> Tensor:
    """Per-pair loss (B, T, K): softplus(-positive) + lambda * sum of softplus(distractor); 0 off pairs.

    scores: (B, T, K, 1 + N); negative_valid: (B, T, K, N) bool, False for distractors to skip.
    """
    positive = F.softplus(-scores[..., 0])  # -log sigmoid(z.h)
    negative = (F.softplus(scores[..., 1:]) * negative_valid).sum(dim=-1)  # -log sigmoid(-z~.h)
    return (positive + negative_weight * negative) * pairs


def shift_to_pairs(per_target: Tensor, steps: int, offset: int = 1) -> Tensor:
    """(B, T, N) values per target frame -> (B, T, K, N) values for the pair (i, step j) aiming at i + offset + j."""
    b, t, n = per_target.shape
    out = per_target.new_zeros(b, t, steps, n)
    for j in step_distances(steps, offset, t):
        k = offset + j
        out[:, : t - k, j] = per_target[:, k:]
    return out


def center_over_time(x: Tensor, padding_mask: Tensor) -> Tensor:
    """(B, T, C) -> the same minus each utterance's mean over its valid frames; padding stays 0."""
    valid = (~padding_mask)[..., None].to(x.dtype)  # (B, T, 1)
    mean = (x * valid).sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1, C)
    return (x - mean) * valid


def resolve_step_offset(step_offset: Union[int, str], frontend_field_frames: Optional[int]) -> int:
    """The first prediction distance: an int >= 1 as given, or ``auto`` = the frontend's field in frames."""
    if step_offset == "auto":
        if frontend_field_frames is None:
            raise ValueError("wav2vec objective: step_offset 'auto' needs the frontend's receptive field in frames "
                             "(a conv frontend gives it); set an integer step_offset instead")
        return int(frontend_field_frames)
    if isinstance(step_offset, bool) or not isinstance(step_offset, int) or step_offset < 1:
        raise ValueError(f"wav2vec objective: step_offset must be an integer >= 1 or 'auto', got {step_offset!r}")
    return step_offset


@OBJECTIVES.register("wav2vec")
class Wav2VecObjective(nn.Module):
    """Owns the K step-specific affine maps h_k: R^D -> R^C, stacked in one Linear(D, K * C)."""

    def __init__(self, embed_dim: int, feature_dim: int, prediction_steps: int = 12, num_negatives: int = 10,
                 negative_weight: float = 1.0, center_targets: bool = False, score_scale: float = 1.0,
                 logit_offset: float = 0.0, step_offset: Union[int, Literal["auto"]] = 1,
                 frontend_field_frames: Optional[int] = None) -> None:
        super().__init__()
        if prediction_steps < 1 or num_negatives < 1:
            raise ValueError(f"wav2vec objective: prediction_steps and num_negatives must be >= 1, got "
                             f"{prediction_steps} and {num_negatives}")
        self.prediction_steps, self.num_negatives = prediction_steps, num_negatives
        self.negative_weight = negative_weight
        if not score_scale > 0:
            raise ValueError(f"wav2vec objective: score_scale must be > 0, got {score_scale}")
        self.center_targets, self.score_scale, self.logit_offset = center_targets, score_scale, logit_offset
        self.feature_dim = feature_dim
        self.step_offset = resolve_step_offset(step_offset, frontend_field_frames)
        self.step_proj = nn.Linear(embed_dim, prediction_steps * feature_dim)

    def forward(self, out: UpstreamOutput, time_mask: Tensor, batch: Dict[str, Any]) -> ObjectiveOutput:
        """out.features: (B, T, C) targets z; out.hidden_states[-1]: (B, T, D) context c."""
        check_time_mask(time_mask, out, "wav2vec")
        if time_mask.any():
            raise ValueError("wav2vec: the 2019 objective predicts unmasked future frames; set masking: "
                             "{prob: 0.0, span: 1}")
        if out.features is None:
            raise ValueError("wav2vec: the upstream returned no features (B, T, C) to predict")
        context = out.hidden_states[-1]  # (B, T, D)
        b, t, _ = context.shape
        predictions = self.step_proj(context).view(b, t, self.prediction_steps, self.feature_dim)  # (B, T, K, C)
        index, valid = sample_frame_negatives(out.padding_mask, self.num_negatives)  # (B, T, N)
        targets = center_over_time(out.features, out.padding_mask) if self.center_targets else out.features
        scores, pairs = step_scores(predictions, targets, index, out.lengths, self.step_offset)
        if self.score_scale != 1.0 or self.logit_offset != 0.0:
            scores = scores * self.score_scale + self.logit_offset  # accuracy is unchanged (scale > 0)
        losses = binary_contrastive_loss(scores, pairs, shift_to_pairs(valid, self.prediction_steps, self.step_offset),
                                         self.negative_weight)  # (B, T, K)
        num_pairs = int(pairs.sum())
        loss = losses.sum() / max(num_pairs, 1)  # a zero with a graph when no utterance has 2 frames
        return ObjectiveOutput({"binary_contrastive": loss}, self._metrics(scores.detach(), pairs),
                               sample_size=max(num_pairs, 1))

    def _metrics(self, scores: Tensor, pairs: Tensor) -> Dict[str, float]:
        """Accuracy (positive above every distractor) overall and per step."""
        wins = (scores[..., 0] > scores[..., 1:].max(dim=-1).values) & pairs  # (B, T, K)
        per_step = wins.sum(dim=(0, 1)) / pairs.sum(dim=(0, 1)).clamp(min=1)  # (K,)
        metrics = {"acc": wins.sum().item() / max(int(pairs.sum()), 1)}
        metrics.update({f"acc_k{k:02d}": acc for k, acc in enumerate(per_step.tolist(), self.step_offset)})
        return metrics
