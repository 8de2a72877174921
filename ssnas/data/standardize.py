"""Input standardization from the training split's statistics (reads no labels).

Real feature views come in wildly different scales (counts in the thousands beside unit-range
moments), and an input projection that starts at the same scale for every node lets the largest
view drown the others until the weights adapt: a tiny labeled set never gets that far. Each
level's channels are centred and scaled by their mean and standard deviation over the training
rows (and positions), so dev and test never leak into the statistics.
"""

from __future__ import annotations

import torch

from ssnas.data.pyramids import FeatureSet


def standardize_level(level: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(N, channels, ...) -> the same, each channel at mean 0 and std 1 over the training rows; a
    constant channel is only centred."""
    values = level.float()
    rows = values.index_select(0, train)
    dims = [0, *range(2, values.dim())]
    mean = rows.mean(dim=dims, keepdim=True)
    std = rows.std(dim=dims, keepdim=True, unbiased=False)
    return (values - mean) / torch.where(std > 1e-8, std, torch.ones_like(std))


def standardized(features: FeatureSet) -> FeatureSet:
    """A copy of `features` whose levels are standardized on its training split."""
    train = features.splits["train"]
    copy = type(features).__new__(type(features))
    copy.__dict__.update(features.__dict__)
    copy.levels = tuple(tuple(standardize_level(level, train) for level in pyramid) for pyramid in features.levels)
    return copy
