"""What sits on the fused representation: a projection for contrastive learning, a classifier."""

from __future__ import annotations

import torch
from torch import nn

from ssnas.nas.primitives import Dropout


class ProjectionHead(nn.Module):
    """SimCLR's MLP: the contrastive loss is taken on its output, the representation kept below it."""

    def __init__(self, in_features: int, hidden: int = 256, out_features: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        return self.net(representation)


class Classifier(nn.Module):
    """Multi-label logits from the fused representation."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(Dropout(dropout), nn.Linear(in_features, num_classes))

    def forward(self, representation: torch.Tensor) -> torch.Tensor:
        return self.net(representation)
