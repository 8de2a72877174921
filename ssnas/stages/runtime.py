"""Where and how a stage computes: device, precision, seeds, threads."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ssnas.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda", "cuda:N"
    bf16: bool = False  # bf16 autocast: on CUDA, and on CPUs with native bf16 (AVX512-BF16, AMX)
    eager: bool = False  # the plain path: one network pass per view, nothing compiled (for comparison, debugging)
    compile: bool = False  # torch.compile each stage's loss (pays on CUDA; on a small CPU it costs more than it saves)

    def __post_init__(self) -> None:
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"run.device: {self.device!r} is not auto, cpu, cuda or cuda:N")

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"run.device: {self.device!r} asked for, but CUDA is not available here")
        return torch.device(self.device)

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """bf16 autocast where asked for and native; elsewhere full precision (emulated bf16 is slower)."""
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
        mode = "reduce-overhead" if self.torch_device().type == "cuda" else None
        return torch.compile(function, dynamic=False, mode=mode)

    def seed_everything(self, offset: int = 0) -> torch.Generator:
        """Seed torch and random; returns a CPU generator for data order and views."""
        seed = self.seed + offset
        random.seed(seed)
        torch.manual_seed(seed)
        return torch.Generator().manual_seed(seed)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (measured 4x fp32's speed on AVX512-BF16)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def configure_threads() -> None:
    """Use every core the process may run on, once (small CPUs lose time to oversubscription)."""
    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
