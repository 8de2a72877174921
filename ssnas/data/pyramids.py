"""The in-memory form of every dataset: per-modality feature pyramids, labels and splits.

It mirrors the `ssnas-features/1` file format (DESIGN.md section 8), so that a dataset is either
built in memory (synthetic) or read from such a file, and the stages never care which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from ssnas.data.feature_format import SPLITS  # re-exported: the split names belong to the file format
from ssnas.data.nodes import node_names
from ssnas.errors import DatasetError


class FeatureSet:
    """Feature pyramids of N samples for two or more modalities.

    `levels[m][k]` is level k (in increasing depth) of modality `modalities[m]`, shaped
    (N, channels), (N, channels, positions) or (N, channels, height, width). `labels` is an
    (N, classes) multi-hot tensor or None for unlabeled data. `splits` maps train / dev / test to
    disjoint int64 row indices.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        levels: Sequence[Sequence[torch.Tensor]],
        splits: Mapping[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        label_names: Sequence[str] | None = None,
        source: str = "",
    ) -> None:
        self.modalities = tuple(modalities)
        self.levels = tuple(tuple(lv) for lv in levels)
        self.splits = {name: torch.as_tensor(idx, dtype=torch.long) for name, idx in splits.items()}
        self._labels = labels
        self.label_names = tuple(label_names) if label_names is not None else None
        self.source = source
        self._labels_hidden = False
        self._check()

    def _check(self) -> None:
        where = self.source or "<in-memory feature set>"
        if len(self.modalities) < 2:
            raise DatasetError(f"{where}: modalities: need at least two, got {list(self.modalities)}")
        if len(self.levels) != len(self.modalities):
            raise DatasetError(f"{where}: modalities: {len(self.modalities)} names but {len(self.levels)} pyramids")
        n = self.num_samples
        for name, pyramid in zip(self.modalities, self.levels, strict=True):
            if not pyramid:
                raise DatasetError(f"{where}: modalities/{name}: no levels")
            for k, level in enumerate(pyramid):
                if level.dim() not in (2, 3, 4) or level.shape[0] != n:
                    raise DatasetError(
                        f"{where}: modalities/{name}/level_{k}: shape {tuple(level.shape)} is not "
                        f"(N={n}, channels[, positions | height, width])"
                    )
        if self._labels is not None and (self._labels.dim() != 2 or self._labels.shape[0] != n):
            raise DatasetError(f"{where}: labels: shape {tuple(self._labels.shape)} is not (N={n}, classes)")
        seen = torch.zeros(n, dtype=torch.bool)
        for split in SPLITS:
            if split not in self.splits:
                raise DatasetError(f"{where}: splits/{split}: missing")
            idx = self.splits[split]
            if idx.numel() and (idx.min() < 0 or idx.max() >= n):
                raise DatasetError(f"{where}: splits/{split}: index out of range 0..{n - 1}")
            if seen[idx].any() or idx.unique().numel() != idx.numel():
                raise DatasetError(f"{where}: splits/{split}: overlaps another split or repeats a row")
            seen[idx] = True

    @property
    def num_samples(self) -> int:
        return int(self.levels[0][0].shape[0])

    @property
    def node_names(self) -> tuple[str, ...]:
        """Input-node names in node order, modality by modality: ("image[0]", ..., "text[1]")."""
        return node_names((m, len(pyramid)) for m, pyramid in zip(self.modalities, self.levels, strict=True))

    @property
    def node_modality(self) -> tuple[int, ...]:
        """For each input node, the index of its modality."""
        return tuple(m for m, pyramid in enumerate(self.levels) for _ in pyramid)

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    @property
    def num_classes(self) -> int:
        if self._labels is None:
            raise DatasetError(f"{self.source or 'dataset'}: labels: this dataset has none")
        return int(self._labels.shape[1])

    @property
    def labels(self) -> torch.Tensor:
        if self._labels_hidden:
            raise DatasetError(f"{self.source or 'dataset'}: labels: hidden from a self-supervised stage")
        if self._labels is None:
            raise DatasetError(f"{self.source or 'dataset'}: labels: this dataset has none")
        return self._labels

    def without_labels(self) -> FeatureSet:
        """A view of the same data whose label access raises: what self-supervised stages get."""
        hidden = type(self).__new__(type(self))
        hidden.__dict__.update(self.__dict__)
        hidden._labels_hidden = True
        return hidden


def pool_level(level: torch.Tensor, positions: int) -> torch.Tensor:
    """One level reduced to BM-NAS's `L` positions, returned as (N, P, channels) with P in {1, L}.

    Maps are adaptive-max-pooled to sqrt(L) x sqrt(L) and sequences to L; a vector stays one
    position (the network broadcasts it after projecting, which is what repeating it would give).
    Pooling has no parameters, so it is done once per dataset instead of once per batch.
    """
    level = level.float()
    if level.dim() == 2:
        return level.unsqueeze(1).contiguous()
    if level.dim() == 3:
        return F.adaptive_max_pool1d(level, positions).transpose(1, 2).contiguous()
    side = math.isqrt(positions)
    if side * side != positions:
        raise DatasetError(f"space.L: {positions} positions is not a square, as pooling a map needs")
    pooled = F.adaptive_max_pool2d(level, side)
    return pooled.flatten(2).transpose(1, 2).contiguous()


def input_nodes(features: FeatureSet, positions: int) -> list[torch.Tensor]:
    """All levels of all modalities pooled to `positions`, in node order: the network's inputs."""
    return [pool_level(level, positions) for pyramid in features.levels for level in pyramid]
