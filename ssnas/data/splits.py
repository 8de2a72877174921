"""Seeded subsets of a split: the labeled fraction r, and DARTS's two disjoint halves."""

from __future__ import annotations

import math

import torch

from ssnas.errors import ConfigError


def labeled_subset(indices: torch.Tensor, label_ratio: float, seed: int) -> torch.Tensor:
    """The first ceil(r * n) rows of a seeded permutation: nested as r grows, for a fixed seed."""
    if not 0.0 < label_ratio <= 1.0:
        raise ConfigError(f"data.label_ratio: {label_ratio} is out of range (0, 1]")
    g = torch.Generator().manual_seed(10_007 + seed)
    order = indices[torch.randperm(indices.numel(), generator=g)]
    return order[: max(1, math.ceil(label_ratio * indices.numel()))].sort().values


def halves(indices: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint halves: one trains the network weights, the other the architecture weights."""
    g = torch.Generator().manual_seed(20_011 + seed)
    order = indices[torch.randperm(indices.numel(), generator=g)]
    middle = order.numel() // 2
    return order[:middle], order[middle:]
