"""Regression checks on the losses that do not belong in the teaching notebook."""
import torch

from sksha.core import ModelOutput
from sksha.losses import metric_learning_loss, sksha_loss


def half_features(batch=4, scale=100.0):
    "fp16 maps shaped like SKSHA-Net's at 299 px, large enough that summing a whole map overflows fp16."
    g = torch.Generator().manual_seed(0)
    shapes = [(batch, 728, 19, 19), (batch, 256, 38, 38), (batch, 128, 76, 76)]
    return [(torch.rand(s, generator=g) * scale).half() for s in shapes]


def test_metric_loss_is_finite_for_fp16_features_whose_sum_overflows():
    feats = half_features()
    assert torch.isinf(feats[0].sum()), "the test needs features whose plain fp16 sum overflows"
    labels = torch.tensor([0., 0., 1., 1.])
    loss = metric_learning_loss(feats, labels)
    assert torch.isfinite(loss)
    ref = metric_learning_loss([f.float() for f in feats], labels)
    assert torch.allclose(loss, ref, atol=1e-3)


def test_metric_loss_without_reals_keeps_features_in_the_graph_and_is_zero():
    feats = [f.float().requires_grad_() for f in half_features(batch=2)]
    loss = metric_learning_loss(feats, torch.tensor([1., 1.]))
    assert loss.item() == 0.0
    loss.backward()
    assert all(f.grad is not None and torch.count_nonzero(f.grad) == 0 for f in feats)


def test_total_loss_is_finite_with_half_precision_outputs():
    feats = half_features()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    out = ModelOutput(torch.randn(4).half(), x.half().clamp(-1, 1), tuple(feats))
    parts = sksha_loss(out, x, torch.tensor([0., 1., 0., 1.]))
    assert all(torch.isfinite(p) for p in parts)
