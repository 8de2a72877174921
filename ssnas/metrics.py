"""Multi-label F1 scores (weighted, macro, micro, samples) and the choice of a decision threshold.

The numbers follow scikit-learn's `f1_score` on multilabel input with `zero_division=0`, so that
results compare with BM-NAS and the SSL-NAS paper, but are computed in torch to keep scikit-learn
out of the dependencies and to score many thresholds at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ssnas.errors import ConfigError

F1_AVERAGES: tuple[str, ...] = ("weighted", "macro", "micro", "samples")

# 0.05, 0.10, ..., 0.95: the thresholds tried on the dev split unless a caller says otherwise.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))


def f1_scores(probs_or_pred: torch.Tensor, targets: torch.Tensor, threshold: float,
              at_least_one: bool = False) -> dict[str, float]:
    """F1 of (N, K) scores against (N, K) multi-hot targets, a label predicted where score >= threshold
    (and, with `at_least_one`, each sample's top-scoring label in any case).

    Hard 0/1 predictions work with any threshold in (0, 1]. Returns {"weighted", "macro", "micro",
    "samples"} as python floats.
    """
    truth = _check(probs_or_pred, targets)
    pred = _with_top(probs_or_pred >= threshold, probs_or_pred, at_least_one)
    return {key: float(value) for key, value in _f1_table(pred, truth).items()}


def best_threshold(
    probs: torch.Tensor,
    targets: torch.Tensor,
    grid: Sequence[float] | None = None,
    key: str = "weighted",
    at_least_one: bool = False,
) -> tuple[float, dict[str, float]]:
    """The single global threshold on `grid` that maximizes F1 `key`, and all four scores there.

    Meant for the dev split, so that the test split is scored once with a threshold it did not
    choose. Ties go to the lower threshold. All thresholds are scored in one batched pass.
    """
    if key not in F1_AVERAGES:
        raise ConfigError(f"F1 average {key!r} is not one of {', '.join(F1_AVERAGES)}")
    thresholds = sorted(float(t) for t in (DEFAULT_THRESHOLDS if grid is None else grid))
    if not thresholds:
        raise ConfigError("threshold grid: empty")
    truth = _check(probs, targets)
    grid_tensor = torch.tensor(thresholds, dtype=probs.dtype, device=probs.device)
    pred = _with_top(probs.unsqueeze(0) >= grid_tensor.view(-1, 1, 1), probs, at_least_one)  # (T, N, K)
    table = _f1_table(pred, truth)
    best = int(torch.argmax(table[key]))  # the first (lowest) maximal threshold
    return thresholds[best], {name: float(values[best]) for name, values in table.items()}


def _with_top(pred: torch.Tensor, probs: torch.Tensor, at_least_one: bool) -> torch.Tensor:
    """Predictions that also name each sample's top-scoring label, when every sample is known to have
    one (every labeled training row does): a sample with no score above the threshold then still
    gets its likeliest label instead of none, which is what single-label data needs."""
    if not at_least_one:
        return pred
    top = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, probs.argmax(-1, keepdim=True), True)
    return pred | top


def _check(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Targets as a bool tensor, after checking that both are (N, K) of the same shape."""
    if probs.dim() != 2 or probs.shape != targets.shape:
        raise ValueError(
            f"F1 needs (N, K) scores and targets of the same shape, got {tuple(probs.shape)} and {tuple(targets.shape)}"
        )
    return targets.to(probs.device) != 0


def _f1_table(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """All four averages for predictions shaped (..., N, K) against (N, K) truth; shape (...)."""
    hit = (pred & truth).double()
    false_pos = (pred & ~truth).double()
    false_neg = (~pred & truth).double()
    per_class = _f1(hit.sum(-2), false_pos.sum(-2), false_neg.sum(-2))  # (..., K)
    per_sample = _f1(hit.sum(-1), false_pos.sum(-1), false_neg.sum(-1))  # (..., N)
    support = truth.double().sum(0)  # (K,)
    total = support.sum()
    weighted = (per_class * support).sum(-1) / total if total > 0 else per_class.sum(-1) * 0.0
    micro = _f1(hit.sum((-2, -1)), false_pos.sum((-2, -1)), false_neg.sum((-2, -1)))
    return {
        "weighted": weighted,
        "macro": per_class.mean(-1),
        "micro": micro,
        "samples": per_sample.mean(-1),
    }


def _f1(hit: torch.Tensor, false_pos: torch.Tensor, false_neg: torch.Tensor) -> torch.Tensor:
    """2 tp / (2 tp + fp + fn), and 0 where nothing was true or predicted (zero_division=0)."""
    denominator = 2 * hit + false_pos + false_neg
    return torch.where(denominator > 0, 2 * hit / denominator.clamp(min=1), torch.zeros_like(hit))
