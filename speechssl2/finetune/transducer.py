"""Transducer (RNN-T) fine-tuning: prediction network, joiner, optional w2v-BERT projection, CTC aux.

The loss is ``torchaudio.functional.rnnt_loss`` (k2 cannot be installed against torch
2.x here). It takes unnormalised logits ``(B, T, U + 1, V)`` in float32 and applies the
log-softmax itself. The prediction network starts every sequence with the blank id as
its start symbol, so blank = 0 is shared with CTC.

YAML::

    model:
      name: transducer
      tokenizer: data/lang_char
      encoder: {upstream: exp/pretrain/checkpoint_best.pt, freeze_updates: 2000}
      predictor: {embed_dim: 256, hidden_dim: 512, num_layers: 1}
      joint_dim: 512
      projection: true      # w2v-BERT: Linear + BatchNorm + Swish between encoder and joiner
      ctc_weight: 0.3       # loss = rnnt + ctc_weight * ctc (0 = no CTC branch)
      loss_chunk: 0         # > 0: joiner + loss this many utterances at a time (bounded memory, same gradients)
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speechssl2.decoding.hypothesis import Hypothesis
from speechssl2.decoding.transducer import TokenLM, greedy_search
from speechssl2.decoding.transducer_batch import batch_beam_search
from speechssl2.finetune.ctc import build_encoder
from speechssl2.finetune.heads import CTCLoss, LinearHead, RNNTLoss
from speechssl2.finetune.joint_loss import joint_logits, joint_rnnt_loss
from speechssl2.finetune.portable import self_contained_spec
from speechssl2.finetune.tokenizer import BLANK, TokenizerSpec, build_tokenizer, encode_batch
from speechssl2.interfaces import StepOutput
from speechssl2.registry import MODELS

LSTMState = Tuple[Tensor, Tensor]  # (h, c), each (num_layers, B, H)


class PredictionNetwork(nn.Module):
    """Embedding + LSTM over the previous tokens: ``(B, U) ids -> (B, U, H)``."""

    def __init__(self, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 512, num_layers: int = 1,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers, batch_first=True)
        self.output_dim = hidden_dim

    def forward(self, tokens: Tensor, state: Optional[LSTMState] = None) -> Tuple[Tensor, LSTMState]:
        out, state = self.lstm(self.drop(self.embed(tokens)), state)
        return self.drop(out), state


class Joiner(nn.Module):
    """``Linear(tanh(W_e enc + W_p pred))``; the two projections are exposed so searches apply them once."""

    def __init__(self, encoder_dim: int, predictor_dim: int, joint_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joint_dim)
        self.predictor_proj = nn.Linear(predictor_dim, joint_dim)
        self.output = nn.Linear(joint_dim, vocab_size)

    def join(self, enc: Tensor, pred: Tensor) -> Tensor:
        """Already projected, broadcastable ``(..., J)`` inputs -> ``(..., V)`` logits."""
        return joint_logits(enc, pred, self.output.weight, self.output.bias)

    def forward(self, enc: Tensor, pred: Tensor) -> Tensor:
        """``(B, T, D_enc)``, ``(B, U + 1, D_pred)`` -> ``(B, T, U + 1, V)`` logits."""
        return self.join(self.encoder_proj(enc)[:, :, None], self.predictor_proj(pred)[:, None])


class ProjectionBlock(nn.Module):
    """w2v-BERT's Linear + BatchNorm + Swish; batch statistics come from valid frames only."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.norm = nn.BatchNorm1d(dim)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        """``(B, T, D)``, ``(B, T)`` True = padding -> ``(B, T, D)`` (padding frames left at 0)."""
        valid = ~padding_mask
        y = torch.zeros_like(x)
        y[valid] = F.silu(self.norm(self.linear(x[valid])))  # (N_valid, D)
        return y


@MODELS.register("transducer")
class TransducerModel(nn.Module):
    """Fine-tuning encoder (+ projection) -> joiner <- prediction network; RNN-T (+ CTC) loss."""

    def __init__(
        self,
        encoder: Dict[str, Any],
        tokenizer: TokenizerSpec,
        predictor: Optional[Dict[str, Any]] = None,
        joint_dim: int = 512,
        projection: bool = False,
        ctc_weight: float = 0.0,
        loss_chunk: int = 0,
    ) -> None:
        super().__init__()
        self.tokenizer = build_tokenizer(tokenizer)
        vocab = self.tokenizer.vocab_size
        self.encoder = build_encoder(encoder, where="models.transducer.encoder")
        dim = self.encoder.embed_dim
        self.projection = ProjectionBlock(dim) if projection else None
        self.predictor = PredictionNetwork(vocab, **(predictor or {}))
        self.joiner = Joiner(dim, self.predictor.output_dim, joint_dim, vocab)
        self.ctc_weight = ctc_weight
        self.ctc_head = LinearHead(dim, vocab) if ctc_weight > 0 else None
        self.rnnt_loss, self.ctc_loss = RNNTLoss(), CTCLoss()
        self.loss_chunk = loss_chunk

    def set_num_updates(self, num_updates: int) -> None:
        self.encoder.set_num_updates(num_updates)

    def self_contained_spec(self, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """This model's spec with no file references (what its checkpoints store)."""
        return self_contained_spec(spec, self.encoder, self.tokenizer)

    def encode(self, audio: Tensor, audio_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, S), (B,) -> (B, T, D)`` joiner-side encoder output and ``(B,)`` frame counts."""
        x, lengths, pad = self.encoder(audio, audio_lens)
        if self.projection is not None:
            x = self.projection(x, pad)
        return x, lengths

    def forward(self, batch: Dict[str, Any]) -> StepOutput:
        x, lengths = self.encode(batch["audio"], batch["audio_lens"])  # (B, T, D)
        targets, target_lens = encode_batch(self.tokenizer, batch["text"], batch["ids"])
        targets, target_lens = targets.to(x.device), target_lens.to(x.device)
        x = x[:, : int(lengths.max())]  # rnnt_loss wants T == max(lengths)
        sos = torch.full((len(targets), 1), BLANK, dtype=torch.long, device=x.device)
        pred, _ = self.predictor(torch.cat([sos, targets], dim=1))  # (B, U + 1, H)
        rnnt = joint_rnnt_loss(self.joiner, x, pred, lengths, targets, target_lens, self.rnnt_loss, self.loss_chunk)
        terms = {"rnnt": rnnt.detach()}
        loss = rnnt
        if self.ctc_head is not None:
            ctc = self.ctc_loss(self.ctc_head(x).float().log_softmax(-1), lengths, targets, target_lens)
            terms["ctc"] = ctc.detach()
            loss = rnnt + self.ctc_weight * ctc
        return StepOutput(loss=loss, terms=terms, sample_size=len(lengths))

    @torch.no_grad()
    def greedy_search(self, audio: Tensor, audio_lens: Tensor, max_symbols: int = 4) -> List[str]:
        """Batched greedy transcripts."""
        x, lengths = self.encode(audio, audio_lens)
        ids = greedy_search(self.predictor, self.joiner, x, lengths, max_symbols=max_symbols)
        return [self.tokenizer.decode(seq) for seq in ids]

    @torch.no_grad()
    def beam_search(self, audio: Tensor, audio_lens: Tensor, beam: int = 4, lm: Optional[TokenLM] = None,
                    lm_weight: float = 0.0) -> List[List[Hypothesis]]:
        """Per utterance, the final beam best first (``Hypothesis.text`` filled in)."""
        x, lengths = self.encode(audio, audio_lens)
        nbests = batch_beam_search(self.predictor, self.joiner, x, lengths, beam=beam, lm=lm, lm_weight=lm_weight)
        return [[h.with_text(self.tokenizer.decode(h.tokens)) for h in hyps] for hyps in nbests]
