"""The network of one genotype: only the chosen inputs and primitives, built from the same modules.

Its parameter names are a subset of its supernet's (`load_from_supernet`), so that a supernet whose
architecture weights are one-hot on a genotype computes exactly what this network computes.
"""

from __future__ import annotations

import torch
from torch import nn

from ssnas.errors import GenotypeError
from ssnas.nas.blocks import CellOutput, FusionHead, InputStem, StepNorm
from ssnas.nas.genotype import CellGene, Genotype, StepGene
from ssnas.nas.primitives import build_primitive
from ssnas.nas.space import SpaceConfig


class FixedStep(nn.Module):
    def __init__(self, gene: StepGene, space: SpaceConfig) -> None:
        super().__init__()
        self.inputs = gene.inputs
        self.primitive = gene.primitive
        op = build_primitive(gene.primitive, space.channels, space.positions, space.dropout)
        self.ops = nn.ModuleDict({gene.primitive: op})
        self.norm = StepNorm(space.channels, space.positions)

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        x, y = states[self.inputs[0]], states[self.inputs[1]]
        return self.norm(self.ops[self.primitive](x, y), x)


class FixedCell(nn.Module):
    def __init__(self, gene: CellGene, space: SpaceConfig) -> None:
        super().__init__()
        self.inputs = gene.inputs
        self.concat = gene.concat
        self.steps = nn.ModuleList(FixedStep(step, space) for step in gene.steps)
        self.output = CellOutput(len(gene.concat), space.channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        states = [x, y]
        for step in self.steps:
            states.append(step(states))
        return self.output([states[i] for i in self.concat])


class FixedNet(nn.Module):
    """Input stem (the nodes the genotype uses), its cells, and the fusion head."""

    def __init__(self, in_channels: list[int], genotype: Genotype, space: SpaceConfig) -> None:
        super().__init__()
        if len(in_channels) != genotype.num_inputs:
            raise GenotypeError(
                f"input_names: the genotype has {genotype.num_inputs} input nodes, the dataset {len(in_channels)}"
            )
        self.genotype = genotype
        self.space = space
        self.in_channels = list(in_channels)
        n = genotype.num_inputs
        used = sorted({i for cell in genotype.cells for i in cell.inputs if i < n})
        self.stem = InputStem(in_channels, space.channels, space.positions, space.dropout, used=used)
        self.cells = nn.ModuleList(FixedCell(cell, space) for cell in genotype.cells)
        self.head = FusionHead(len(genotype.concat), space.channels, space.positions)
        self.out_features = len(genotype.concat) * space.channels * space.positions

    @property
    def used_nodes(self) -> list[int]:
        return self.stem.used

    def embed(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The used input nodes, (B, L, C) each, in `used_nodes` order."""
        return self.stem(levels)

    def fuse(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        states: dict[int, torch.Tensor] = dict(zip(self.used_nodes, nodes, strict=True))
        n = self.genotype.num_inputs
        for k, (gene, cell) in enumerate(zip(self.genotype.cells, self.cells, strict=True)):
            states[n + k] = cell(states[gene.inputs[0]], states[gene.inputs[1]])
        return self.head([states[i] for i in self.genotype.concat])

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return self.fuse(self.embed(levels))

    def load_from_supernet(self, supernet: nn.Module) -> None:
        """Copy the weights this network shares by name with the supernet it was derived from."""
        mine = self.state_dict()
        shared = {name: value for name, value in supernet.state_dict().items() if name in mine}
        missing = sorted(set(mine) - set(shared))
        if missing:
            raise GenotypeError(f"cells: the supernet lacks {missing[0]} (genotype not of this space?)")
        self.load_state_dict(shared)
