"""The frozen conv feature encoder keeps no autograd graph during fine-tuning (SPEC §4)."""
from __future__ import annotations

import torch
from torch.autograd.graph import saved_tensors_hooks

from speechssl2.finetune.encoder import FineTuneEncoder


def test_frozen_frontend_saves_nothing_for_backward():
    torch.manual_seed(0)
    enc = FineTuneEncoder({"name": "wavlm_tiny"}, freeze_updates=0, time_mask=(0.2, 2)).train()
    saved, outputs, hooks = [], [], []

    def enter(module, args):
        ctx = saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t)
        ctx.__enter__()
        hooks.append(ctx)

    def leave(module, args, out):
        hooks.pop().__exit__(None, None, None)
        outputs.append(out[0])

    enc.upstream.frontend.register_forward_pre_hook(enter)
    enc.upstream.frontend.register_forward_hook(leave)
    audio, lens = torch.randn(2, 3200), torch.tensor([3200, 2000])
    x, _, _ = enc(audio, lens)
    assert saved == []  # the frontend recorded nothing for backward: the same as running under no_grad
    assert outputs[0].grad_fn is None and not outputs[0].requires_grad
    x.sum().backward()
    assert all(p.grad is None for p in enc.upstream.frontend.parameters())
    assert enc.upstream.feature_proj.weight.grad is not None  # the rest of the upstream does train
