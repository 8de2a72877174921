"""Where and how a stage computes: device, precision, seed, compiled or eager (the recipe's `[run]`).

Its methods that touch torch import it when called, so that building a `Runtime` (as recipe validation
does) imports nothing heavy; torch-only helpers (`cpu_has_bf16`, `configure_threads`) live in
`ssnas.stages.runtime`.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssnas.errors import ConfigError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Runtime:
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    bf16: bool = False  # bf16 autocast: on CUDA, and on CPUs with native bf16 (AVX512-BF16, AMX)
    eager: bool = False  # the plain path: one network pass per view, nothing compiled (for comparison, debugging)
    compile: bool = False  # torch.compile each stage's loss (pays on CUDA; on a small CPU it costs more than it saves)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"run.seed: {self.seed} is out of range (>= 0)")
        if not (self.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", self.device)):
            raise ConfigError(f"run.device: {self.device!r} is not auto, cpu, cuda or cuda:N")

    def torch_device(self) -> torch.device:
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"run.device: {self.device!r} asked for, but CUDA is not available here")
        return torch.device(self.device)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16 autocast where asked for and native; elsewhere full precision (emulated bf16 is slower)."""
        import torch

        from ssnas.stages.runtime import cpu_has_bf16

        if self.bf16 and (device.type == "cuda" or cpu_has_bf16()):
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def batch_views(self) -> bool:
        """Whether the views of a step go through the network as one stacked batch (see nas.batching)."""
        return not self.eager

    def compiled(self, function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """`function` through torch.compile when asked for (and not eager); else unchanged.

        On CUDA in "reduce-overhead" mode: CUDA graphs replay the step's hundreds of small kernels
        in one launch, which is what a launch-bound step needs.
        """
        if not self.compile or self.eager:
            return function
        import torch

        mode = "reduce-overhead" if self.torch_device().type == "cuda" else None
        return torch.compile(function, dynamic=False, mode=mode)

    def seed_everything(self, offset: int = 0) -> torch.Generator:
        """Seed torch and random; returns a CPU generator for data order and views."""
        import torch

        seed = self.seed + offset
        random.seed(seed)
        torch.manual_seed(seed)
        return torch.Generator().manual_seed(seed)
