import math

import pytest
import torch

from ssnas.errors import ConfigError
from ssnas.objectives import multilabel_bce, nt_xent


def test_nt_xent_hand_value():
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_b = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # normalized: b0 = (1, 0), b1 = (s, s)
    t = 0.5
    s = 1 / math.sqrt(2)
    # cosines: a0.a1 = 0, a0.b0 = 1, a0.b1 = s, a1.b0 = 0, a1.b1 = s, b0.b1 = s
    loss_a0 = -1 / t + math.log(math.exp(0) + math.exp(1 / t) + math.exp(s / t))  # others a1, b0+, b1
    loss_a1 = -s / t + math.log(math.exp(0) + math.exp(0) + math.exp(s / t))  # others a0, b0, b1+
    loss_b0 = -1 / t + math.log(math.exp(1 / t) + math.exp(0) + math.exp(s / t))  # others a0+, a1, b1
    loss_b1 = -s / t + math.log(3 * math.exp(s / t))  # others a0, a1+, b0, all at s
    expected = (loss_a0 + loss_a1 + loss_b0 + loss_b1) / 4
    assert nt_xent(z_a, z_b, t).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_symmetric():
    gen = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    assert nt_xent(z_a, z_b, 0.2).item() == pytest.approx(nt_xent(z_b, z_a, 0.2).item(), rel=1e-6)


def test_nt_xent_aligned_views_beat_shuffled():
    gen = torch.Generator().manual_seed(0)
    z_a = torch.eye(8) + 0.05 * torch.randn(8, 8, generator=gen)
    z_b = torch.eye(8) + 0.05 * torch.randn(8, 8, generator=gen)
    shuffled = z_b[torch.roll(torch.arange(8), 1)]
    aligned = nt_xent(z_a, z_b, 0.1)
    assert aligned.item() < 0.01
    assert aligned.item() < nt_xent(z_a, shuffled, 0.1).item() - 5


def test_nt_xent_gradients_finite():
    z_a = torch.randn(4, 3, requires_grad=True)
    z_b = torch.randn(4, 3, requires_grad=True)
    nt_xent(z_a, z_b, 0.5).backward()
    assert torch.isfinite(z_a.grad).all() and torch.isfinite(z_b.grad).all()


@pytest.mark.parametrize("temperature", [0.0, -0.1])
def test_nt_xent_bad_temperature(temperature):
    with pytest.raises(ConfigError, match="temperature"):
        nt_xent(torch.ones(2, 2), torch.ones(2, 2), temperature)


def test_nt_xent_shape_mismatch():
    with pytest.raises(ValueError):
        nt_xent(torch.ones(2, 2), torch.ones(3, 2), 0.5)


def test_multilabel_bce_hand_value():
    logits = torch.tensor([[0.0, 2.0]])
    targets = torch.tensor([[1, 0]], dtype=torch.uint8)
    # -log sigmoid(0) = log 2;  -log(1 - sigmoid(2)) = log(1 + e^2)
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert multilabel_bce(logits, targets).item() == pytest.approx(expected, rel=1e-6)
