"""Transducer search: batched greedy and time-synchronous beam search with LM shallow fusion.

Both work on any prediction network ``predictor(tokens (N, U), state) -> (out (N, U, H),
state)`` with an LSTM-style ``(h, c)`` state of shape ``(layers, N, H)`` and any joiner
exposing ``encoder_proj``, ``predictor_proj`` and ``join`` (see
``speechssl2.finetune.transducer``). The blank id is 0 and starts every prediction.

Why our own search rather than ESPnet's ``BeamSearchTransducer`` or torchaudio's
``RNNTBeamSearch``: both need the model wrapped in their decoder/joint interfaces
(ESPnet's ``AbsDecoder`` state API, torchaudio's ``RNNT`` with its transcriber), and
neither fuses our Transformer LM; the search below is shorter than either adapter.

Beam search (time-synchronous, after Saon et al. 2020): at each frame the beam may emit
up to ``max_symbols`` tokens, expanding at most ``beam`` hypotheses per step; a
hypothesis leaves the frame by emitting blank, and hypotheses with the same tokens are
merged by adding their probabilities (different alignments of one label sequence).
With an LM every emitted token adds ``lm_weight * log P_lm(token | prefix)``, and each
final hypothesis ``lm_weight * log P_lm(</s> | tokens)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor, nn

from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.tokenizers import BLANK

State = Tuple[Tensor, Tensor]  # (h, c), each (layers, N, H)


class TokenLM(Protocol):
    """An LM over the transducer's own token ids (``speechssl2.lm.transformer_lm.TransformerLM``)."""

    vocab_size: int

    def next_log_probs(self, prefixes: Sequence[Sequence[int]]) -> Tensor: ...


@dataclass
class _Node:
    score: float
    pred: Tensor  # (J,) projected prediction-network output after ``tokens``
    state: State  # (layers, H) each: the prediction network's state after ``tokens``


def _predict(predictor: nn.Module, joiner: nn.Module, last: Tensor, state: Optional[State]) -> Tuple[Tensor, State]:
    """Feed one token per row: ``(N,)`` ids -> ``(N, J)`` projected outputs and the new state."""
    out, state = predictor(last[:, None], state)  # (N, 1, H)
    return joiner.predictor_proj(out[:, 0]), state


@torch.no_grad()
def greedy_search(predictor: nn.Module, joiner: nn.Module, enc: Tensor, lengths: Tensor,
                  max_symbols: int = 4) -> List[List[int]]:
    """Batched greedy: ``enc (B, T, D)``, ``lengths (B,)`` -> token ids per utterance.

    At each frame every utterance emits its arg-max token until it picks blank or has
    emitted ``max_symbols`` tokens in that frame.
    """
    batch, frames, _ = enc.shape
    enc_j = joiner.encoder_proj(enc)  # (B, T, J)
    pred, state = _predict(predictor, joiner, torch.full((batch,), BLANK, device=enc.device), None)  # (B, J)
    hyps: List[List[int]] = [[] for _ in range(batch)]
    for t in range(frames):
        active = t < lengths  # (B,)
        for _ in range(max_symbols):
            best = joiner.join(enc_j[:, t], pred).argmax(-1)  # (B,)
            emit = active & (best != BLANK)
            if not bool(emit.any()):
                break
            for b in emit.nonzero().flatten().tolist():
                hyps[b].append(int(best[b]))
            new_pred, new_state = _predict(predictor, joiner, best, state)
            pred = torch.where(emit[:, None], new_pred, pred)
            state = tuple(torch.where(emit[None, :, None], n, o) for n, o in zip(new_state, state))  # type: ignore[assignment]
            active = emit
    return hyps


def _stack_states(nodes: Sequence[_Node]) -> State:
    return tuple(torch.stack([n.state[i] for n in nodes], dim=1) for i in range(2))  # type: ignore[return-value]


class _LMCache:
    """``lm_weight * log P_lm(. | prefix)`` per prefix, computed once per prefix."""

    def __init__(self, lm: Optional[TokenLM], weight: float, vocab_size: int) -> None:
        if lm is not None and lm.vocab_size != vocab_size:
            raise ValueError(f"LM vocabulary ({lm.vocab_size}) differs from the transducer's ({vocab_size}): "
                             "fusion needs an LM trained with the same tokenizer")
        self.lm, self.weight, self.cache = lm, weight, {}  # type: ignore[var-annotated]

    def __call__(self, prefixes: Sequence[Tuple[int, ...]], device: torch.device, vocab: int) -> Tensor:
        """(N, V) weighted LM log-probs (zeros without an LM)."""
        if self.lm is None or self.weight == 0.0:
            return torch.zeros(len(prefixes), vocab, device=device)
        missing = [p for p in prefixes if p not in self.cache]
        if missing:
            for p, row in zip(missing, self.lm.next_log_probs([list(p) for p in missing])):
                self.cache[p] = self.weight * row.to(device)
        return torch.stack([self.cache[p] for p in prefixes])


@torch.no_grad()
def beam_search(predictor: nn.Module, joiner: nn.Module, enc: Tensor, beam: int = 4, max_symbols: int = 4,
                lm: Optional[TokenLM] = None, lm_weight: float = 0.0) -> List[Hypothesis]:
    """One utterance ``enc (T, D)`` -> the final beam, best first."""
    enc_j = joiner.encoder_proj(enc)  # (T, J)
    vocab = joiner.output.out_features
    lm_scores = _LMCache(lm, lm_weight, vocab)
    pred, state = _predict(predictor, joiner, torch.tensor([BLANK], device=enc.device), None)
    kept: Dict[Tuple[int, ...], _Node] = {(): _Node(0.0, pred[0], (state[0][:, 0], state[1][:, 0]))}
    for t in range(enc_j.shape[0]):
        frontier, ended = kept, {}
        for step in range(max_symbols + 1):
            keys = list(frontier)
            nodes = [frontier[k] for k in keys]
            logp = joiner.join(enc_j[t][None], torch.stack([n.pred for n in nodes])).log_softmax(-1)  # (N, V)
            for key, node, row in zip(keys, nodes, logp):
                score = node.score + float(row[BLANK])
                if key in ended:
                    score = float(torch.logaddexp(torch.tensor(ended[key].score, dtype=torch.float64),
                                                  torch.tensor(score, dtype=torch.float64)))
                ended[key] = _Node(score, node.pred, node.state)
            if step == max_symbols:
                break
            frontier = _expand(predictor, joiner, keys, nodes, logp + lm_scores(keys, enc.device, vocab), beam)
        kept = dict(sorted(ended.items(), key=lambda kv: -kv[1].score)[:beam])
    final = lm_scores(list(kept), enc.device, vocab)[:, BLANK].tolist()  # sentence end
    hyps = [Hypothesis(k, n.score + end) for (k, n), end in zip(kept.items(), final)]
    return sorted(hyps, key=lambda h: -h.score)


def _expand(predictor: nn.Module, joiner: nn.Module, keys: List[Tuple[int, ...]], nodes: List[_Node],
            logp: Tensor, beam: int) -> Dict[Tuple[int, ...], _Node]:
    """The ``beam`` best one-token extensions (blank excluded), with their prediction-network step."""
    # Scores accumulate in float64 (as in the batched search) so long utterances lose no precision.
    scores = torch.tensor([n.score for n in nodes], dtype=torch.float64, device=logp.device)[:, None] \
        + logp[:, 1:].double()  # (N, V - 1)
    top = scores.flatten().topk(min(beam, scores.numel()))
    rows = (top.indices // scores.shape[1]).tolist()
    tokens = (top.indices % scores.shape[1] + 1).tolist()
    parents = [nodes[r] for r in rows]
    pred, state = _predict(predictor, joiner, torch.tensor(tokens, device=logp.device), _stack_states(parents))
    return {
        keys[r] + (tok,): _Node(float(s), pred[i], (state[0][:, i], state[1][:, i]))
        for i, (r, tok, s) in enumerate(zip(rows, tokens, top.values.tolist()))
        if math.isfinite(s)
    }
