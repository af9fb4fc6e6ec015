"""Batched time-synchronous transducer beam search: every utterance of a batch advances together.

The same search as ``speechssl2.decoding.transducer.beam_search`` (its docstring gives
the algorithm), with the hypotheses of all utterances kept as tensors of ``beam`` slots
per utterance: tokens ``(B, K, L)``, scores ``(B, K)`` in float64, the projected
prediction output ``(B, K, J)`` and the LSTM state ``(layers, B, K, H)``. One joiner call
and one prediction-network call per emission step serve the whole batch, which is where
the speed-up over one utterance at a time comes from. An empty slot has score ``-inf``.

Equal token sequences reached along different alignments are merged within a frame by
``logsumexp`` of their scores; they are found by a rolling hash of the tokens and checked
token by token, and the merged hypothesis takes the place of its first occurrence, as the
one-utterance search's insertion-ordered dict does. ``tests/decoding/test_transducer_batch.py``
checks that both searches return the same hypotheses and scores.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

import torch
from torch import Tensor, nn

from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.decoding.transducer import State, TokenLM, _LMCache, _predict
from speechssl2.tokenizers import BLANK

_HASH_MOD, _HASH_MUL = 2_147_483_647, 1_000_003  # products stay below 2**63


@dataclass
class _Beam:
    """``N`` hypotheses of each of ``B`` utterances (``N`` = beam for kept, more for candidates)."""

    scores: Tensor  # (B, N) float64, -inf = empty slot
    tokens: Tensor  # (B, N, L) long, valid up to lens
    lens: Tensor  # (B, N)
    hashes: Tensor  # (B, N) rolling hash of tokens[:lens]
    pred: Tensor  # (B, N, J) projected prediction output after the tokens
    state: State  # (layers, B, N, H) each

    def take(self, index: Tensor) -> "_Beam":
        """Slots ``index (B, M)`` of every utterance."""
        def pick(x: Tensor, dim: int) -> Tensor:
            shape = [1] * x.dim()
            shape[dim], shape[dim + 1] = index.shape
            full = list(x.shape)
            full[dim + 1] = index.shape[1]
            return x.gather(dim + 1, index.view(shape).expand(full))
        return _Beam(pick(self.scores, 0), pick(self.tokens, 0), pick(self.lens, 0), pick(self.hashes, 0),
                     pick(self.pred, 0), (pick(self.state[0], 1), pick(self.state[1], 1)))

    def rows(self, index: Tensor) -> "_Beam":
        """Utterances ``index (B',)``."""
        return _Beam(self.scores[index], self.tokens[index], self.lens[index], self.hashes[index], self.pred[index],
                     (self.state[0][:, index], self.state[1][:, index]))

    def put_rows(self, index: Tensor, other: "_Beam") -> None:
        """Write ``other`` into utterances ``index`` (token width grows to fit)."""
        width = max(self.tokens.shape[2], other.tokens.shape[2])
        self.tokens, other_tokens = _widen(self.tokens, width), _widen(other.tokens, width)
        self.scores[index], self.tokens[index], self.lens[index] = other.scores, other_tokens, other.lens
        self.hashes[index], self.pred[index] = other.hashes, other.pred
        self.state[0][:, index], self.state[1][:, index] = other.state


def _widen(tokens: Tensor, width: int) -> Tensor:
    return torch.nn.functional.pad(tokens, (0, width - tokens.shape[2]))


def _cat(beams: List[_Beam]) -> _Beam:
    width = max(b.tokens.shape[2] for b in beams)
    return _Beam(torch.cat([b.scores for b in beams], 1), torch.cat([_widen(b.tokens, width) for b in beams], 1),
                 torch.cat([b.lens for b in beams], 1), torch.cat([b.hashes for b in beams], 1),
                 torch.cat([b.pred for b in beams], 1),
                 (torch.cat([b.state[0] for b in beams], 2), torch.cat([b.state[1] for b in beams], 2)))


def _prefixes(beam: _Beam) -> List[tuple]:
    """Token tuples of every slot, utterance-major (for the LM's per-prefix cache)."""
    lens = beam.lens.flatten().tolist()
    return [tuple(row[:n]) for row, n in zip(beam.tokens.flatten(0, 1).tolist(), lens)]


def _lm_log_probs(lm_scores: _LMCache, beam: _Beam, vocab: int) -> Tensor:
    """(B, N, V) weighted LM log-probs of each slot's next token (zeros without an LM)."""
    batch, slots = beam.scores.shape
    if lm_scores.lm is None or lm_scores.weight == 0.0:
        return beam.pred.new_zeros(batch, slots, vocab)
    return lm_scores(_prefixes(beam), beam.pred.device, vocab).view(batch, slots, vocab)


def _expand(predictor: nn.Module, joiner: nn.Module, frontier: _Beam, logp: Tensor, size: int) -> _Beam:
    """The ``size`` best one-token extensions per utterance (blank excluded), with their prediction step."""
    batch, slots, vocab = logp.shape
    scores = frontier.scores[..., None] + logp[..., 1:].double()  # (B, N, V - 1)
    top = scores.flatten(1).topk(min(size, slots * (vocab - 1)), dim=1)
    parent, token = top.indices // (vocab - 1), top.indices % (vocab - 1) + 1  # (B, M)
    new = frontier.take(parent)
    width = int(new.lens.max()) + 1
    tokens = _widen(new.tokens, max(width, new.tokens.shape[2]))
    tokens.scatter_(2, new.lens[..., None], token[..., None])
    hashes = (new.hashes * _HASH_MUL + token + 1) % _HASH_MOD
    flat_state = (new.state[0].flatten(1, 2), new.state[1].flatten(1, 2))  # (layers, B * M, H)
    pred, state = _predict(predictor, joiner, token.flatten(), flat_state)
    return _Beam(top.values, tokens, new.lens + 1, hashes, pred.view(batch, -1, pred.shape[-1]),
                 (state[0].view(state[0].shape[0], batch, -1, state[0].shape[-1]),
                  state[1].view(state[1].shape[0], batch, -1, state[1].shape[-1])))


def _merge(cands: _Beam) -> Tensor:
    """(B, N) scores with equal token sequences merged by logsumexp into their first occurrence (others -inf)."""
    valid = torch.isfinite(cands.scores)
    same = (cands.hashes[:, :, None] == cands.hashes[:, None, :]) & (cands.lens[:, :, None] == cands.lens[:, None, :])
    same &= valid[:, :, None] & valid[:, None, :]
    b, i, j = (same & ~torch.eye(same.shape[1], dtype=torch.bool, device=same.device)).nonzero(as_tuple=True)
    if len(b):  # a hash match is only a candidate: compare the tokens
        same[b, i, j] = (cands.tokens[b, i] == cands.tokens[b, j]).all(-1)
    first = same.float().argmax(-1)  # (B, N) index of each slot's first equal slot
    positions = torch.arange(same.shape[1], device=same.device)
    merged = torch.logsumexp(cands.scores[:, None, :].masked_fill(~same, float("-inf")), dim=-1)
    return merged.masked_fill((first != positions) | ~valid, float("-inf"))


def _frame(predictor: nn.Module, joiner: nn.Module, enc_t: Tensor, kept: _Beam, beam: int, max_symbols: int,
           lm_scores: _LMCache, vocab: int) -> _Beam:
    """One frame for the utterances of ``kept``: ``enc_t (B, J)`` -> the new kept beams."""
    frontier, ended = kept, []
    for step in range(max_symbols + 1):
        logp = joiner.join(enc_t[:, None], frontier.pred).log_softmax(-1)  # (B, N, V)
        ended.append(replace(frontier, scores=frontier.scores + logp[..., BLANK].double()))
        if step == max_symbols:
            break
        fused = logp + _lm_log_probs(lm_scores, frontier, vocab)
        frontier = _expand(predictor, joiner, frontier, fused, beam)
    cands = _cat(ended)
    merged = _merge(cands)
    order = merged.sort(dim=1, descending=True, stable=True).indices[:, :beam]
    return replace(cands.take(order), scores=merged.gather(1, order))


@torch.no_grad()
def batch_beam_search(predictor: nn.Module, joiner: nn.Module, enc: Tensor, lengths: Tensor, beam: int = 4,
                      max_symbols: int = 4, lm: Optional[TokenLM] = None,
                      lm_weight: float = 0.0) -> List[List[Hypothesis]]:
    """``enc (B, T, D)``, ``lengths (B,)`` -> per utterance the final beam, best first."""
    batch, device = enc.shape[0], enc.device
    enc_j = joiner.encoder_proj(enc)  # (B, T, J)
    vocab = joiner.output.out_features
    lm_scores = _LMCache(lm, lm_weight, vocab)
    pred, state = _predict(predictor, joiner, torch.full((batch,), BLANK, device=device), None)  # (B, J)
    scores = torch.full((batch, beam), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0
    zeros = torch.zeros(batch, beam, dtype=torch.long, device=device)
    kept = _Beam(scores, zeros[..., None], zeros, zeros.clone(), pred[:, None].expand(-1, beam, -1).contiguous(),
                 (state[0][:, :, None].expand(-1, -1, beam, -1).contiguous(),
                  state[1][:, :, None].expand(-1, -1, beam, -1).contiguous()))
    for t in range(int(lengths.max()) if batch else 0):
        active = (t < lengths).nonzero().flatten()
        sub = _frame(predictor, joiner, enc_j[active, t], kept.rows(active), beam, max_symbols, lm_scores, vocab)
        kept.put_rows(active, sub)
    final = kept.scores + _lm_log_probs(lm_scores, kept, vocab)[..., BLANK].double()  # sentence end
    out: List[List[Hypothesis]] = []
    for b in range(batch):
        hyps = [Hypothesis(tuple(kept.tokens[b, k, : kept.lens[b, k]].tolist()), float(final[b, k]))
                for k in range(beam) if torch.isfinite(kept.scores[b, k])]
        out.append(sorted(hyps, key=lambda h: -h.score))
    return out
