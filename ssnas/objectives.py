"""The training objectives: NT-Xent (SimCLR) for self-supervised stages, multi-label BCE for labels.

A plugin may replace NT-Xent by another label-free loss (entry-point group `ssnas.objectives`, chosen
by `search.ssl_loss` / `pretrain.ssl_loss`): an `SSLLoss`, with NT-Xent's signature.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ssnas import plugins
from ssnas.errors import ConfigError

# (z_a, z_b, temperature) -> a scalar loss: z_a[i] and z_b[i] are the (N, D) embeddings of the two views of
# sample i; the loss must be differentiable, read no labels, and may ignore the temperature.
SSLLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def ssl_loss(name: str) -> SSLLoss:
    """The label-free loss `name`: NT-Xent, or an installed plugin's (its module imported now)."""
    if name == "nt_xent":
        return nt_xent
    return plugins.load_callable(plugins.OBJECTIVES_GROUP, name, "a loss (z_a, z_b, temperature) -> tensor")


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalized temperature-scaled cross-entropy between two views of N samples.

    Each of the 2N embeddings is an anchor whose positive is the other view of its sample and whose
    negatives are the 2N - 2 other embeddings; the loss is the mean cross-entropy over all anchors,
    so it reads no labels and is symmetric in the two views.
    """
    if not temperature > 0:
        raise ConfigError(f"temperature: {temperature} is out of range (> 0)")
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise ValueError(
            f"nt_xent needs two (N, D) views of the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    n = z_a.shape[0]
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    logits = z @ z.T / temperature
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pair, float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positive)


def multilabel_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits over every (sample, class): BM-NAS's supervised loss."""
    if logits.shape != targets.shape:
        raise ValueError(f"multilabel_bce: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    return F.binary_cross_entropy_with_logits(logits, targets.to(dtype=logits.dtype, device=logits.device))
