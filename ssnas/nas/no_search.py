"""No-search baselines: what a fusion search has to beat on the same inputs and labels.

Each reads the input nodes as the stages hold them ((B, P, channels) per node, P = 1 for a vector
level) and returns class logits: a linear model and an MLP on every node flattened and
concatenated (early fusion), and late fusion (one MLP per modality, logits averaged).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssnas.nas.primitives import Dropout


def flat_nodes(nodes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Every node flattened and concatenated: one vector per sample (early fusion's input)."""
    return torch.cat([node.flatten(1) for node in nodes], dim=1)


def _mlp(in_features: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, num_classes))


class EarlyFusion(nn.Module):
    """All nodes concatenated into one vector; a linear model (`hidden` None) or a one-hidden-layer MLP."""

    def __init__(self, node_sizes: Sequence[int], num_classes: int, hidden: int | None, dropout: float) -> None:
        super().__init__()
        width = sum(node_sizes)
        self.net = (nn.Sequential(Dropout(dropout), nn.Linear(width, num_classes)) if hidden is None
                    else _mlp(width, hidden, num_classes, dropout))

    def forward(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        return self.net(flat_nodes(nodes))


class LateFusion(nn.Module):
    """One MLP per modality on that modality's nodes; the class logits are averaged."""

    def __init__(self, node_sizes: Sequence[int], node_modality: Sequence[int], num_classes: int, hidden: int,
                 dropout: float) -> None:
        super().__init__()
        self.groups = [[i for i, m in enumerate(node_modality) if m == modality]
                       for modality in sorted(set(node_modality))]
        self.heads = nn.ModuleList(
            _mlp(sum(node_sizes[i] for i in group), hidden, num_classes, dropout) for group in self.groups
        )

    def forward(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        logits = [head(flat_nodes([nodes[i] for i in group]))
                  for head, group in zip(self.heads, self.groups, strict=True)]
        return torch.stack(logits).mean(dim=0)


def build_no_search(kind: str, node_shapes: Sequence[tuple[int, int]], node_modality: Sequence[int],
                    num_classes: int, hidden: int, dropout: float) -> nn.Module:
    """`kind` is "linear", "mlp" or "late_fusion"; `node_shapes` are the nodes' (positions, channels)."""
    sizes = [p * c for p, c in node_shapes]
    if kind == "linear":
        return EarlyFusion(sizes, num_classes, None, dropout)
    if kind == "mlp":
        return EarlyFusion(sizes, num_classes, hidden, dropout)
    if kind == "late_fusion":
        return LateFusion(sizes, node_modality, num_classes, hidden, dropout)
    raise ValueError(f"finetune.model: {kind!r} is not a no-search baseline")
