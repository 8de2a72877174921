"""Input-node names: the one naming rule.

An input node is one level of one modality, named `modality[k]` (k = 0 is the shallowest level),
listed modality by modality. Genotypes are bound to datasets by these names, never by position
(DESIGN.md 10), so the rule lives here once: `FeatureSet.node_names` applies it to data in memory
and `ssnas.data.dataset_nodes` to a recipe's `[data]` settings, which lets `ssnas run` refuse a
genotype that does not fit before any run exists (recipe validation imports no torch).
"""

from __future__ import annotations

from collections.abc import Iterable

# ssnas.data.synthetic: image maps, then text vectors.
SYNTHETIC_MODALITIES: tuple[str, str] = ("image", "text")
# ssnas.data.mmimdb: VGG19's four taps (relu4_1, relu4_4, relu5_3, pool5), the text MLP's two levels (64, 128).
MMIMDB_PYRAMIDS: tuple[tuple[str, int], ...] = (("image", 4), ("text", 2))


def node_name(modality: str, level: int) -> str:
    """The name of level `level` of `modality`: `image[2]`."""
    return f"{modality}[{level}]"


def node_names(pyramids: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """Every input node's name, in node order, from (modality, number of levels) in modality order."""
    return tuple(node_name(modality, k) for modality, levels in pyramids for k in range(levels))
