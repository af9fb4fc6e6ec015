"""CTC fine-tuning: the fine-tuning encoder, dropout and Linear(D -> vocab), blank = 0 (SPEC §4).

YAML::

    model:
      name: ctc
      tokenizer: data/lang_char          # a saved tokenizer directory, or a TOKENIZERS spec
      encoder:                           # FineTuneEncoder arguments
        upstream: exp/pretrain/checkpoint_best.pt   # or {name: wav2vec2_tiny} from scratch
        freeze_updates: 10000
        time_mask: [0.05, 10]
        channel_mask: [0.0016, 64]
      head: {name: linear, dropout: 0.1}   # a HEADS key: (B, T, D) -> (B, T, V) logits

The loss is summed over utterances and divided by their number (``sample_size`` = B).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn
from torchaudio.functional import edit_distance

from speechssl2.decoding.ctc import ctc_greedy, ctc_greedy_ids
from speechssl2.finetune.encoder import FineTuneEncoder
from speechssl2.finetune.heads import CTCLoss
from speechssl2.finetune.portable import self_contained_spec
from speechssl2.finetune.tokenizer import TokenizerSpec, build_tokenizer, encode_batch
from speechssl2.interfaces import StepOutput
from speechssl2.registry import HEADS, MODELS, check_arguments

log = logging.getLogger(__name__)


def build_encoder(spec: Mapping[str, Any], where: str) -> FineTuneEncoder:
    """``FineTuneEncoder(**spec)`` with the registry's argument checks (names and types)."""
    check_arguments(FineTuneEncoder, spec, where=where)
    return FineTuneEncoder(**spec)


def ctc_min_frames(targets: Tensor, target_lens: Tensor) -> Tensor:
    """(B,) fewest frames that can emit each target: its length plus one blank per repeated pair."""
    repeats = (targets[:, 1:] == targets[:, :-1]) & (torch.arange(1, targets.shape[1])[None, :] < target_lens[:, None])
    return target_lens + repeats.sum(1)


@MODELS.register("ctc")
class CTCModel(nn.Module):
    """Upstream (+ weighted layer sum) -> head (default: dropout + Linear(D, V)) -> CTC."""

    def __init__(self, encoder: Dict[str, Any], tokenizer: TokenizerSpec,
                 head: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.tokenizer = build_tokenizer(tokenizer)
        self.encoder = build_encoder(encoder, where="models.ctc.encoder")
        self.head = HEADS.build(head or {"name": "linear"}, in_dim=self.encoder.embed_dim,
                                out_dim=self.tokenizer.vocab_size)
        self.criterion = CTCLoss()

    def set_num_updates(self, num_updates: int) -> None:
        self.encoder.set_num_updates(num_updates)

    def self_contained_spec(self, spec: Mapping[str, Any]) -> Dict[str, Any]:
        """This model's spec with no file references (what its checkpoints store)."""
        return self_contained_spec(spec, self.encoder, self.tokenizer)

    def log_probs(self, audio: Tensor, audio_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, S), (B,) -> (B, T, V)`` log-probabilities (float32) and ``(B,)`` frame counts."""
        x, lengths, _ = self.encoder(audio, audio_lens)  # (B, T, D)
        return self.head(x).float().log_softmax(-1), lengths

    def forward(self, batch: Dict[str, Any]) -> StepOutput:
        log_probs, lengths = self.log_probs(batch["audio"], batch["audio_lens"])  # (B, T, V), (B,)
        targets, target_lens = encode_batch(self.tokenizer, batch["text"], batch["ids"])
        targets, target_lens = targets.to(log_probs.device), target_lens.to(log_probs.device)
        self._warn_infeasible(batch["ids"], lengths, targets, target_lens)
        loss = self.criterion(log_probs, lengths, targets, target_lens)
        metrics: Dict[str, float] = {}
        if not self.training:
            metrics["token_error_rate"] = self._token_error_rate(log_probs, lengths, targets, target_lens)
        return StepOutput(loss=loss, terms={"ctc": loss.detach()}, metrics=metrics, sample_size=len(lengths))

    @staticmethod
    def _warn_infeasible(ids: List[str], lengths: Tensor, targets: Tensor, target_lens: Tensor) -> None:
        """Utterances with fewer frames than their transcript needs get zero loss: say which."""
        short = (lengths < ctc_min_frames(targets.cpu(), target_lens.cpu()).to(lengths.device)).nonzero().flatten()
        if len(short):
            log.warning("CTC: transcript longer than the audio allows, utterance(s) skipped (zero loss): %s",
                        ", ".join(f"{ids[i]} ({int(lengths[i])} frames)" for i in short.tolist()))

    @staticmethod
    def _token_error_rate(log_probs: Tensor, lengths: Tensor, targets: Tensor, target_lens: Tensor) -> float:
        """Greedy-path token edit distance / reference tokens (a validation health metric)."""
        hyps = ctc_greedy_ids(log_probs, lengths)
        errors = sum(edit_distance(h, targets[i, : target_lens[i]].tolist()) for i, h in enumerate(hyps))
        return errors / max(int(target_lens.sum()), 1)

    @torch.no_grad()
    def transcribe(self, audio: Tensor, audio_lens: Tensor) -> List[str]:
        """Greedy CTC transcripts of a batch."""
        log_probs, lengths = self.log_probs(audio, audio_lens)
        return [h.text for h in ctc_greedy(log_probs, lengths, self.tokenizer.decode)]
