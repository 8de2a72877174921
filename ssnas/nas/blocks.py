"""The parts that the supernet and the fixed network share, so that both compute the same function.

Module names matter: a fixed network's parameters are a subset of its supernet's under the same
names, which is how a supernet's weights carry over to the network derived from it.
"""

from __future__ import annotations

import torch
from torch import nn

from ssnas.nas.primitives import ChannelBatchNorm, Dropout


class NodeProjection(nn.Module):
    """One input node's level -> (B, L, C): 1x1 projection, batch norm, ReLU, dropout."""

    def __init__(self, in_channels: int, channels: int, positions: int, dropout: float) -> None:
        super().__init__()
        self.positions = positions
        self.linear = nn.Linear(in_channels, channels)
        self.norm = ChannelBatchNorm(channels)
        self.dropout = Dropout(dropout)

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        node = torch.relu(self.norm(self.linear(level)))
        if node.shape[1] == 1:  # a vector level: repeating it over L positions after projecting is exact
            # one dropout mask for all positions of a repeated vector, as dropping the vector itself
            return self.dropout(node).expand(-1, self.positions, -1)
        return self.dropout(node)


class InputStem(nn.Module):
    """Input nodes projected to the common (L, C) shape; only `used` ones (a fixed net's) if given.

    Projections are keyed by node index so that a fixed network that uses nodes 2 and 4 names
    them as its supernet does.
    """

    def __init__(
        self, in_channels: list[int], channels: int, positions: int, dropout: float, used: list[int] | None = None
    ) -> None:
        super().__init__()
        self.used = list(range(len(in_channels))) if used is None else sorted(used)
        self.nodes = nn.ModuleDict(
            {str(i): NodeProjection(in_channels[i], channels, positions, dropout) for i in self.used}
        )

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Project the used nodes of the full list of levels, in node order."""
        return [self.nodes[str(i)](levels[i]) for i in self.used]


class StepNorm(nn.Module):
    """A step's output: LayerNorm(op(x, y) + x), as in BM-NAS."""

    def __init__(self, channels: int, positions: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm([positions, channels])

    def forward(self, fused: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.norm(fused + x)


class CellOutput(nn.Module):
    """Concatenate a cell's step outputs; project back to C when there is more than one."""

    def __init__(self, num_steps: int, channels: int) -> None:
        super().__init__()
        self.project = nn.Linear(num_steps * channels, channels) if num_steps > 1 else None

    def forward(self, steps: list[torch.Tensor]) -> torch.Tensor:
        if self.project is None:
            return steps[0]
        return self.project(torch.cat(steps, dim=-1))


class FusionHead(nn.Module):
    """The last cells concatenated, LayerNorm, ReLU, flattened: the fused representation."""

    def __init__(self, num_cells: int, channels: int, positions: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm([positions, num_cells * channels])

    def forward(self, cells: list[torch.Tensor]) -> torch.Tensor:
        return torch.relu(self.norm(torch.cat(cells, dim=-1))).flatten(1)
