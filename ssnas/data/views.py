"""Two label-free views of a batch of input nodes, for the contrastive objective (DESIGN.md 1.6).

Views are made on the stem's outputs, so the frozen backbones never run in the training loop. The
default `cross_modal` policy shows the two views disjoint sets of modalities, so they can agree only
through what the modalities share, which is what a fusion network has to find; `instance` shows both
views every modality and perturbs each on its own, as SimCLR does with images. A plugin's policy
(entry-point group `ssnas.view_policies`) is a `ViewPolicy`: `make_views` hands it the same arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssnas import plugins
from ssnas.config.views import VIEW_POLICIES, ViewConfig
from ssnas.errors import ConfigError

Views = tuple[list[torch.Tensor], list[torch.Tensor]]
# (nodes, node_modality, config, generator) -> (view_a, view_b), as `make_views` below: each view a list of
# tensors shaped like the nodes, new tensors (the inputs are not modified), all randomness from `generator`.
ViewPolicy = Callable[[list[torch.Tensor], tuple[int, ...], ViewConfig, torch.Generator | None], Views]


@torch.compiler.disable  # random offsets and masks drawn on the host: compiling them would recompile every step
def make_views(
    nodes: list[torch.Tensor],
    node_modality: tuple[int, ...],
    config: ViewConfig,
    generator: torch.Generator | None = None,
) -> Views:
    """Two augmented copies of the input nodes (each (B, L, C)), batched over samples.

    `node_modality[i]` is the modality of node i. Hidden modalities are zeroed after the other
    augmentations, so they carry nothing at all. Inputs are never modified; all randomness comes
    from `generator` (drawn on its device), so a seeded generator gives the same views.
    """
    if config.policy not in VIEW_POLICIES:
        return _plugin_views(nodes, node_modality, config, generator)
    modality = _modality_index(nodes, node_modality)
    num_modalities = max(modality) + 1
    batch, like = nodes[0].shape[0], nodes[0]
    shown_a: torch.Tensor | None
    shown_b: torch.Tensor | None
    if config.policy == "cross_modal":
        if num_modalities < 2:
            raise ConfigError("views.policy: 'cross_modal' needs at least two modalities, the inputs have one")
        shown_a = _random_split(batch, num_modalities, like, generator)
        shown_b = ~shown_a
    else:
        shown_a = _modality_dropout(batch, num_modalities, config.modality_dropout, like, generator)
        shown_b = _modality_dropout(batch, num_modalities, config.modality_dropout, like, generator)
    view_a = _augment(nodes, modality, shown_a, config, generator)
    view_b = _augment(nodes, modality, shown_b, config, generator)
    return view_a, view_b


def _plugin_views(nodes: list[torch.Tensor], node_modality: tuple[int, ...], config: ViewConfig,
                  generator: torch.Generator | None) -> Views:
    """The views of a plugin's policy, checked to be two lists of tensors shaped like the nodes."""
    group, name = plugins.VIEW_POLICIES_GROUP, config.policy
    policy: ViewPolicy = plugins.load_callable(group, name,
                                               "a view policy (nodes, node_modality, config, generator) -> views")
    views = policy(nodes, node_modality, config, generator)
    shapes = [tuple(x.shape) for x in nodes]
    if not (isinstance(views, tuple) and len(views) == 2
            and all(isinstance(v, list) and [tuple(x.shape) for x in v] == shapes for v in views)):
        raise plugins.find(group, name).error("made views that are not two lists of tensors shaped like the nodes")
    return views


def _modality_index(nodes: list[torch.Tensor], node_modality: tuple[int, ...]) -> tuple[int, ...]:
    """Modality ids renumbered 0..M-1 in sorted order, after checking the nodes' shapes."""
    if not nodes or len(nodes) != len(node_modality):
        raise ValueError(f"make_views: {len(nodes)} nodes but {len(node_modality)} node modalities")
    batch = nodes[0].shape[0]
    for i, x in enumerate(nodes):
        if x.dim() != 3 or x.shape[0] != batch or not x.is_floating_point():
            raise ValueError(f"make_views: node {i} is {x.dtype} {tuple(x.shape)}, not floating (B={batch}, L, C)")
    ids = sorted(set(node_modality))
    return tuple(ids.index(m) for m in node_modality)


def _uniform(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) float32 on `like`'s device, drawn on the generator's device."""
    device = like.device if generator is None else generator.device
    return torch.rand(shape, generator=generator, device=device).to(like.device)


def _integers(high: int, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Integers in [0, high) on `like`'s device, drawn on the generator's device."""
    device = like.device if generator is None else generator.device
    return torch.randint(0, high, shape, generator=generator, device=device).to(like.device)


_NOISE_POOL_SIZE = 1 << 22
_noise_pools: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _gaussian(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like `like`: a window at a random offset of a fixed pool.

    Drawing fresh normals was the largest single cost of a contrastive step on CPU (a sixth of
    it); a window of a 4M-value pool costs nothing and, at a random offset per node and view, is
    as good a perturbation. The pool itself is drawn once from a fixed seed, so views stay
    reproducible from `generator` alone. Tensors larger than the pool get fresh normals.
    """
    count = like.numel()
    if count > _NOISE_POOL_SIZE // 2:
        device = like.device if generator is None else generator.device
        return torch.randn(like.shape, generator=generator, device=device).to(like)
    key = (like.device, like.dtype)
    if key not in _noise_pools:
        pool = torch.randn(_NOISE_POOL_SIZE, generator=torch.Generator().manual_seed(0x5EED))
        _noise_pools[key] = pool.to(device=like.device, dtype=like.dtype)
    offset = int(_integers(_NOISE_POOL_SIZE - count + 1, (1,), like, generator))
    return _noise_pools[key][offset : offset + count].view(like.shape)


def _random_split(
    batch: int, num_modalities: int, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, M) bool: per sample a uniform non-empty proper subset of the modalities."""
    code = 1 + _integers(2**num_modalities - 2, (batch,), like, generator)  # 1 .. 2^M - 2
    bits = 2 ** torch.arange(num_modalities, device=like.device)
    return (code.unsqueeze(1) & bits) != 0


def _modality_dropout(
    batch: int, num_modalities: int, p: float, like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor | None:
    """(B, M) bool of shown modalities, one random modality hidden with prob. p; None if all shown."""
    if p == 0 or num_modalities < 2:
        return None
    drop = _uniform((batch,), like, generator) < p
    which = _integers(num_modalities, (batch,), like, generator)
    hidden = drop.unsqueeze(1) & (which.unsqueeze(1) == torch.arange(num_modalities, device=like.device))
    return ~hidden


def _augment(
    nodes: list[torch.Tensor],
    modality: tuple[int, ...],
    shown: torch.Tensor | None,
    config: ViewConfig,
    generator: torch.Generator | None,
) -> list[torch.Tensor]:
    """One view: level mixing, noise, channel dropout, position masking, then hiding modalities."""
    xs = _level_mix(nodes, modality, config.level_mix, generator) if config.level_mix > 0 else list(nodes)
    view = []
    for i, x in enumerate(xs):
        batch, length, channels = x.shape
        if config.noise > 0:
            x = x + config.noise * _gaussian(x, generator)
        if config.channel_dropout > 0:
            keep = _uniform((batch, 1, channels), x, generator) >= config.channel_dropout
            x = x * keep.to(x.dtype) / (1 - config.channel_dropout)
        if config.position_mask > 0:
            keep = _uniform((batch, length, 1), x, generator) >= config.position_mask
            x = x * keep.to(x.dtype)
        if shown is not None:
            x = x * shown[:, modality[i]].to(x.dtype).view(batch, 1, 1)
        view.append(x)
    return view


def _level_mix(
    nodes: list[torch.Tensor], modality: tuple[int, ...], strength: float, generator: torch.Generator | None
) -> list[torch.Tensor]:
    """Each node mixed, per sample, with a random other level of its modality (of the unmixed inputs)."""
    mixed = list(nodes)
    for m in range(max(modality) + 1):
        members = [i for i, mod in enumerate(modality) if mod == m]
        if len(members) < 2:
            continue
        shapes = {tuple(nodes[i].shape) for i in members}
        if len(shapes) > 1:
            raise ValueError(f"views.level_mix: the levels of modality {m} differ in shape {sorted(shapes)}")
        levels = torch.stack([nodes[i] for i in members])  # (levels, B, L, C)
        batch = levels.shape[1]
        rows = torch.arange(batch, device=levels.device)
        for j, i in enumerate(members):
            other = _integers(len(members) - 1, (batch,), levels, generator)
            other = other + (other >= j).long()  # any level but this one
            lam = (strength * _uniform((batch,), levels, generator)).to(levels.dtype).view(batch, 1, 1)
            mixed[i] = (1 - lam) * nodes[i] + lam * levels[other, rows]
    return mixed
