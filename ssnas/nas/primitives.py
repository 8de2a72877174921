"""Fusion primitives: each maps two node tensors (B, L, C) x (B, L, C) -> (B, L, C).

Tensors are kept as (batch, positions, channels) rather than BM-NAS's (batch, channels, positions):
the same numbers, but every 1x1 convolution becomes one dense matrix product over the last axis,
which is what CPUs and GPUs run fastest. A built-in primitive is named in `vocabulary.PRIMITIVES`
and built by its factory in `PRIMITIVE_FACTORIES`; a plugin's primitive (entry-point group
`ssnas.primitives`, docs/plugins.md) is a factory with the same contract, `PrimitiveFactory`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ssnas import plugins


class ChannelBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channel axis of a (B, L, C) tensor: the statistics of BN on (B, C, L).

    `groups` > 1 says the batch stacks that many separate batches (the views of a step, see
    `nas.batching`): in training each is normalized by its own statistics, and the running
    statistics are updated group after group, as separate passes would update them.
    """

    groups: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups > 1 and self.training:
            return torch.cat([self._normalize(part) for part in x.chunk(self.groups)])
        return self._normalize(x)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def random_bytes(shape: torch.Size, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform random uint8s: drawn 8 at a time as int64s, which is several times faster on CPU."""
    count = math.prod(shape)
    words = torch.empty((count + 7) // 8, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1, generator=generator)
    return words.view(torch.uint8)[:count].view(shape)


class Dropout(nn.Module):
    """Inverted dropout whose mask comes from random bytes, so p is rounded to a multiple of 1/256.

    torch's CPU dropout spends most of its time drawing a float per element; this draws a byte.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.cutoff = round(p * 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.cutoff == 0:
            return x
        if torch.compiler.is_compiling():  # the compiler fuses its own random mask into the kernels around it
            return F.dropout(x, self.p, training=True)
        keep = random_bytes(x.shape, x.device) >= self.cutoff
        return x * keep * (256.0 / (256 - self.cutoff))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Zero(nn.Module):
    """No fusion: the step passes its first input through its residual alone."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class Sum(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class Product(nn.Module):
    """Elementwise product: the cheapest multiplicative interaction between two nodes."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class Attention(nn.Module):
    """Scaled dot-product attention of x's positions over y's (keys = values = y), then LayerNorm."""

    def __init__(self, channels: int, positions: int, dropout: float) -> None:
        super().__init__()
        self.scale = 1.0 / math.sqrt(channels)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm([positions, channels])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        attention = torch.softmax(torch.bmm(x, y.transpose(1, 2)) * self.scale, dim=-1)
        return self.norm(torch.bmm(self.dropout(attention), y))


class LinearGLU(nn.Module):
    """Concatenate, project to 2C, batch-normalise, gated linear unit back to C."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * channels, 2 * channels)
        self.norm = ChannelBatchNorm(2 * channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.glu(self.norm(self.linear(torch.cat((x, y), dim=-1))), dim=-1)


class ConcatFC(nn.Module):
    """Concatenate, project to C, batch-normalise, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * channels, channels)
        self.norm = ChannelBatchNorm(channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.linear(torch.cat((x, y), dim=-1))))


class ConcatConvMish(nn.Module):
    """Concatenate, convolve over 3 neighbouring positions to C, batch-normalise, Mish."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2 * channels, channels, kernel_size=3, padding=1)
        self.norm = ChannelBatchNorm(channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fused = self.conv(torch.cat((x, y), dim=-1).transpose(1, 2)).transpose(1, 2)
        return F.mish(self.norm(fused))


# (channels C, positions L, dropout) -> a module whose forward(x, y) maps two (B, L, C) tensors to one
# (B, L, C) tensor; dropout is the space's, for primitives that drop anything (attention does).
PrimitiveFactory = Callable[[int, int, float], nn.Module]

# The built-in primitives' factories, by their names in vocabulary.PRIMITIVES.
PRIMITIVE_FACTORIES: dict[str, PrimitiveFactory] = {
    "zero": lambda channels, positions, dropout: Zero(),
    "sum": lambda channels, positions, dropout: Sum(),
    "product": lambda channels, positions, dropout: Product(),
    "attention": lambda channels, positions, dropout: Attention(channels, positions, dropout),
    "linear_glu": lambda channels, positions, dropout: LinearGLU(channels),
    "concat_fc": lambda channels, positions, dropout: ConcatFC(channels),
    "concat_conv_mish": lambda channels, positions, dropout: ConcatConvMish(channels),
}


def primitive_factory(name: str) -> PrimitiveFactory:
    """The factory of primitive `name`: a built-in one, else the installed plugin's (its module imported now)."""
    if name in PRIMITIVE_FACTORIES:
        return PRIMITIVE_FACTORIES[name]
    return plugins.load_callable(plugins.PRIMITIVES_GROUP, name, "a factory (channels, positions, dropout) -> module")


def build_primitive(name: str, channels: int, positions: int, dropout: float = 0.0) -> nn.Module:
    """The module of primitive `name` for C = `channels` and L = `positions`."""
    module = primitive_factory(name)(channels, positions, dropout)
    if not isinstance(module, nn.Module):
        plugin = plugins.find(plugins.PRIMITIVES_GROUP, name)
        raise plugin.error(f"built a {type(module).__name__}, not a torch.nn.Module")
    return module
