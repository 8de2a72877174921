"""The size of the search space: how many cells and steps, C and L, which primitives."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ssnas.errors import ConfigError
from ssnas.nas.vocabulary import DEFAULT_PRIMITIVES, known_primitives


@dataclass(frozen=True)
class SpaceConfig:
    cells: int = 2  # fusion cells (BM-NAS: 2)
    steps: int = 1  # steps inside each cell (BM-NAS: 1)
    channels: int = 192  # C: every node is projected to C channels (BM-NAS: 192)
    positions: int = 16  # L: every node is reduced to L positions (BM-NAS: 16)
    primitives: tuple[str, ...] = DEFAULT_PRIMITIVES  # candidate fusion operations (built-in or plugins')
    cell_multiplier: int = 2  # how many of the last cells the head concatenates (BM-NAS: 2)
    dropout: float = 0.1  # dropout in the input projections and attention

    def __post_init__(self) -> None:
        object.__setattr__(self, "primitives", tuple(self.primitives))
        for name in ("cells", "steps", "channels", "positions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"space.{name}: {getattr(self, name)} is out of range (>= 1)")
        if math.isqrt(self.positions) ** 2 != self.positions:
            raise ConfigError(f"space.positions: {self.positions} is not a square number "
                              "(maps pool to sqrt(L) x sqrt(L))")
        known = known_primitives()
        unknown = [p for p in self.primitives if p not in known]
        if unknown:
            raise ConfigError(f"space.primitives: unknown {unknown} (known: {', '.join(known)})")
        if len(set(self.primitives)) != len(self.primitives):
            raise ConfigError("space.primitives: names repeat")
        if not [p for p in self.primitives if p != "zero"]:
            raise ConfigError("space.primitives: needs at least one primitive other than zero")
        if not 1 <= self.cell_multiplier <= self.cells:
            raise ConfigError(f"space.cell_multiplier: {self.cell_multiplier} is out of range (1..{self.cells})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"space.dropout: {self.dropout} is out of range [0, 1)")
