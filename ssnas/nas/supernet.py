"""The searchable network: every choice of the BM-NAS space relaxed to a softmax (DARTS).

Three kinds of architecture weights, all `nn.Parameter`s kept apart from the network weights:
`cell_input` (BM-NAS's alpha: per cell, two input slots over the input nodes and earlier cells),
`step_input` (beta: per step, two slots over the cell's inputs and earlier steps) and `step_op`
(gamma: per step, a distribution over primitives). The slots are ordered because a step is
LayerNorm(op(x, y) + x): x is the residual and the attention query, y what it attends to.

Two relaxations. "softmax" (DARTS) mixes every candidate by its softmaxed weight. "gumbel" (GDAS)
samples one candidate per choice and forward pass from Gumbel-softmax at temperature `tau`, as a
one-hot vector whose gradient is the soft sample's (straight-through). Only what was sampled is
computed: a step runs its sampled primitive, a slot reads its sampled input, and input nodes that no
slot sampled are not projected at all. The sampled candidate is scaled by its one-hot weight (1 in
the forward pass), and that weight's gradient reaches every logit of the choice through the
softmax, so every architecture weight still learns. Evaluation (eval mode) uses the softmax in both
cases.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssnas.nas.blocks import CellOutput, FusionHead, InputStem, StepNorm
from ssnas.nas.derive import ArchWeights, derive
from ssnas.nas.genotype import Genotype
from ssnas.nas.primitives import build_primitive
from ssnas.nas.space import SpaceConfig


def _mix(weights: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(slots, n) weights over (n, B, L, C) candidates -> (slots, B, L, C), in one kernel."""
    return torch.tensordot(weights.to(candidates.dtype), candidates, dims=1)


def _pick(one_hot: torch.Tensor, candidates: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """(slots, n) straight-through one-hot weights -> (slots, B, L, C): each slot's sampled candidate times
    its weight, the only candidate a slot reads (GDAS)."""
    picked = []
    for row in one_hot:
        chosen = int(row.argmax())
        picked.append(row[chosen].to(candidates[chosen].dtype) * candidates[chosen])
    return torch.stack(picked)


class SearchStep(nn.Module):
    """A step that computes every primitive and sums them by their weights."""

    def __init__(self, space: SpaceConfig) -> None:
        super().__init__()
        self.ops = nn.ModuleDict(
            {name: build_primitive(name, space.channels, space.positions, space.dropout) for name in space.primitives}
        )
        self.norm = StepNorm(space.channels, space.positions)

    def forward(self, candidates: torch.Tensor, input_weights: torch.Tensor, op_weights: torch.Tensor,
                sampled: bool = False) -> torch.Tensor:
        if sampled:  # one-hot: only the chosen inputs and primitive run; their weights carry the gradient
            x, y = _pick(input_weights, candidates)
            chosen = int(op_weights.argmax())
            name, op = list(self.ops.items())[chosen]
            fused = op_weights[chosen] * (torch.zeros_like(x) if name == "zero" else op(x, y))
            return self.norm(fused, x)
        x, y = _mix(input_weights, candidates)
        mixed: torch.Tensor | None = None
        for weight, (name, op) in zip(op_weights, self.ops.items(), strict=True):
            if name == "zero":  # contributes nothing; skip the work
                continue
            term = weight * op(x, y)
            mixed = term if mixed is None else mixed + term
        return self.norm(mixed, x)


class SearchCell(nn.Module):
    def __init__(self, space: SpaceConfig) -> None:
        super().__init__()
        self.steps = nn.ModuleList(SearchStep(space) for _ in range(space.steps))
        self.output = CellOutput(space.steps, space.channels)

    def forward(
        self, inputs: torch.Tensor, step_input_weights: list[torch.Tensor], step_op_weights: torch.Tensor,
        sampled: bool = False,
    ) -> torch.Tensor:
        """`inputs`: the cell's two mixed inputs, stacked (2, B, L, C)."""
        states = inputs
        outputs = []
        for j, step in enumerate(self.steps):
            out = step(states, step_input_weights[j], step_op_weights[j], sampled)
            outputs.append(out)
            states = torch.cat((states, out.unsqueeze(0)))
        return self.output(outputs)


class Supernet(nn.Module):
    """Input stem, `cells` searchable cells and the fusion head; returns the fused representation."""

    def __init__(self, in_channels: list[int], input_names: tuple[str, ...], space: SpaceConfig,
                 relaxation: str = "softmax") -> None:
        super().__init__()
        self.space = space
        self.relaxation = relaxation
        self.tau = 1.0  # the Gumbel-softmax temperature; the search anneals it
        self._noise: dict[str, torch.Tensor] = {}  # this step's Gumbel noise per choice (see `draw`)
        self.input_names = tuple(input_names)
        self.in_channels = list(in_channels)
        n = len(in_channels)
        self.stem = InputStem(in_channels, space.channels, space.positions, space.dropout)
        self.cells = nn.ModuleList(SearchCell(space) for _ in range(space.cells))
        self.head = FusionHead(space.cell_multiplier, space.channels, space.positions)
        self.out_features = space.cell_multiplier * space.channels * space.positions

        def logits(*shape: int) -> nn.Parameter:
            return nn.Parameter(1e-3 * torch.randn(*shape))

        self.cell_input_logits = nn.ParameterList(logits(2, n + k) for k in range(space.cells))
        self.step_input_logits = nn.ParameterList(
            logits(2, 2 + j) for _ in range(space.cells) for j in range(space.steps)
        )
        self.step_op_logits = nn.ParameterList(logits(space.steps, len(space.primitives)) for _ in range(space.cells))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.cell_input_logits, *self.step_input_logits, *self.step_op_logits]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def embed(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The input nodes, (B, L, C) each: where feature-level views are made. When this step's sample is
        drawn, nodes that no cell slot sampled are zeros, not projections: nothing reads them."""
        used = self._sampled_nodes()
        if used is None or len(used) == len(levels):
            return self.stem(levels)
        nodes: list[torch.Tensor | None] = [
            self.stem.nodes[str(i)](level) if i in used else None for i, level in enumerate(levels)
        ]
        like = next(node for node in nodes if node is not None)
        return [torch.zeros_like(like) if node is None else node for node in nodes]

    def _sampled_nodes(self) -> set[int] | None:
        """The input nodes some cell slot sampled this step (None: not sampling, or no sample drawn)."""
        if not (self.sampling and self._noise):
            return None
        n = len(self.in_channels)
        used: set[int] = set()
        for k, logits in enumerate(self.cell_input_logits):
            chosen = (logits.detach() + self._noise[f"cell_input{k}"]).argmax(dim=-1)
            used.update(int(c) for c in chosen if int(c) < n)
        return used

    @property
    def sampling(self) -> bool:
        return self.relaxation == "gumbel" and self.training

    def _named_logits(self) -> dict[str, nn.Parameter]:
        return {**{f"cell_input{k}": p for k, p in enumerate(self.cell_input_logits)},
                **{f"step_input{i}": p for i, p in enumerate(self.step_input_logits)},
                **{f"step_op{k}": p for k, p in enumerate(self.step_op_logits)}}

    def draw(self, generator: torch.Generator | None) -> None:
        """Draw the architecture that every pass of this step samples (gumbel only): both views of a
        contrastive step must go through the same architecture, and a seeded generator makes the
        draw repeatable, as the second-order step needs."""
        self._noise = {}
        if not self.sampling:
            return
        for name, logits in self._named_logits().items():
            uniform = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
            self._noise[name] = (-torch.log(-torch.log(uniform))).to(logits.device)

    def _choice(self, name: str, logits: torch.Tensor) -> torch.Tensor:
        """Weights of a choice: its softmax, or (sampling) a straight-through one-hot Gumbel sample
        (`name` finds this step's noise)."""
        if not self.sampling:
            return torch.softmax(logits, dim=-1)
        noise = self._noise.get(name)
        if noise is None:
            noise = -torch.log(-torch.log(torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-7)))
        soft = torch.softmax((logits + noise) / self.tau, dim=-1)
        hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
        return hard - soft.detach() + soft

    def fuse(self, nodes: list[torch.Tensor]) -> torch.Tensor:
        steps = self.space.steps
        stacked = None if self.sampling else torch.stack(nodes)
        n = len(nodes)
        cell_outputs: list[torch.Tensor] = []
        for k, cell in enumerate(self.cells):
            weights = self._choice(f"cell_input{k}", self.cell_input_logits[k])
            if self.sampling:
                mixed = _pick(weights, [*nodes, *cell_outputs])
            else:
                # earlier cells are added one by one rather than re-stacking every candidate per cell
                assert stacked is not None
                mixed = _mix(weights[:, :n], stacked)
                for j, earlier in enumerate(cell_outputs):
                    mixed = mixed + weights[:, n + j, None, None, None] * earlier
            step_inputs = [self._choice(f"step_input{i}", self.step_input_logits[i])
                           for i in range(k * steps, (k + 1) * steps)]
            op_weights = self._choice(f"step_op{k}", self.step_op_logits[k])
            cell_outputs.append(cell(mixed, step_inputs, op_weights, self.sampling))
        return self.head(cell_outputs[-self.space.cell_multiplier :])

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return self.fuse(self.embed(levels))

    @torch.no_grad()
    def arch_weights(self) -> ArchWeights:
        """The softmaxed architecture weights as plain floats, for logging and deriving."""
        steps = self.space.steps

        def probs(t: torch.Tensor) -> tuple:
            return tuple(tuple(row) for row in torch.softmax(t.float(), dim=-1).cpu().tolist())

        return ArchWeights(
            input_names=self.input_names,
            primitives=self.space.primitives,
            cell_input=tuple(probs(w) for w in self.cell_input_logits),
            step_input=tuple(
                tuple(probs(w) for w in self.step_input_logits[k * steps : (k + 1) * steps])
                for k in range(self.space.cells)
            ),
            step_op=tuple(probs(w) for w in self.step_op_logits),
            cell_multiplier=self.space.cell_multiplier,
        )

    def genotype(self) -> Genotype:
        return derive(self.arch_weights())
