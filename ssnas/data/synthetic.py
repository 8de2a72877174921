"""The embedded default dataset: two modalities with a planted fusion architecture.

Generative process (all draws from one seeded generator, so a seed gives the same data anywhere):

1. Each sample has a *shared* latent s in R^d (d = `shared_dim`, split in halves s_A and s_B) and,
   per modality, a *modality-specific* nuisance latent u_m in R^`specific_dim`. All standard normal.
2. The "image" modality has `image_levels` levels, each a (channels, side, side) map; the "text"
   modality has `len(text_dims)` levels, each a vector. Every level is a fixed random linear map
   (its own, drawn once per seed) of a content vector, plus per-sample Gaussian noise `noise`.
3. Only the *planted* levels (`planted_image` of the image, `planted_text` of the text) carry the
   shared latent: the image's planted level sees s_A clearly and s_B through heavy noise, the
   text's sees s_B clearly and s_A through heavy noise. Every other level carries its modality's
   nuisance u_m, plus a weak noisy leak (`leak`) of s so that no level is trivially useless.
4. Label j is on when s_A[a_j] * s_B[b_j] + 0.5 (s_A[c_j] + s_B[d_j]) exceeds its own quantile,
   chosen so that label frequencies spread from 5 % to 40 % (multi-label, imbalanced like MM-IMDB).

So the labels depend on a multiplicative interaction between the planted image level and the
planted text level: a network must fuse exactly those two levels to predict well, and modality-
specific nuisance (strong and stable per sample) is what an instance-level contrastive objective
can latch onto instead. The planted nodes default to image[2] and text[0], the levels BM-NAS's
MM-IMDB architecture fuses, so that both similarity scores read on the same scale.
"""

from __future__ import annotations

import torch

from ssnas.config.data import SyntheticConfig
from ssnas.data.nodes import SYNTHETIC_MODALITIES
from ssnas.data.pyramids import FeatureSet


def _level(content: torch.Tensor, size: int, noise: float, g: torch.Generator) -> torch.Tensor:
    """A fixed random linear read-out of `content` into `size` features, plus per-sample noise."""
    mixing = torch.randn(content.shape[1], size, generator=g) / content.shape[1] ** 0.5
    return content @ mixing + noise * torch.randn(content.shape[0], size, generator=g)


def _labels(s_a: torch.Tensor, s_b: torch.Tensor, classes: int, g: torch.Generator) -> torch.Tensor:
    half = s_a.shape[1]
    pick = torch.randint(half, (classes, 4), generator=g)
    scores = s_a[:, pick[:, 0]] * s_b[:, pick[:, 1]] + 0.5 * (s_a[:, pick[:, 2]] + s_b[:, pick[:, 3]])
    frequencies = torch.linspace(0.05, 0.40, classes)
    thresholds = torch.stack([torch.quantile(scores[:, j], 1 - frequencies[j]) for j in range(classes)])
    return (scores > thresholds).to(torch.uint8)


def make_synthetic(config: SyntheticConfig = SyntheticConfig()) -> FeatureSet:
    """Generate the dataset of `config` (a few seconds at most at default sizes)."""
    g = torch.Generator().manual_seed(config.seed)
    n = config.train + config.dev + config.test
    half = config.shared_dim // 2
    shared = torch.randn(n, config.shared_dim, generator=g)
    s_a, s_b = shared[:, :half], shared[:, half:]

    def planted(clear: torch.Tensor, unclear: torch.Tensor, nuisance: torch.Tensor) -> torch.Tensor:
        blurred = unclear + config.cross_noise * torch.randn(unclear.shape, generator=g)
        return torch.cat((clear, blurred, 0.5 * nuisance), dim=1)

    def unplanted(nuisance: torch.Tensor) -> torch.Tensor:
        leak = config.leak * (shared + torch.randn(shared.shape, generator=g))
        return torch.cat((nuisance, leak), dim=1)

    map_size = config.image_channels * config.image_side**2
    u_image = torch.randn(n, config.specific_dim, generator=g)
    image = []
    for k in range(config.image_levels):
        content = planted(s_a, s_b, u_image) if k == config.planted_image else unplanted(u_image)
        flat = _level(content, map_size, config.noise, g)
        image.append(flat.view(n, config.image_channels, config.image_side, config.image_side))
    u_text = torch.randn(n, config.specific_dim, generator=g)
    text = []
    for k, dims in enumerate(config.text_dims):
        content = planted(s_b, s_a, u_text) if k == config.planted_text else unplanted(u_text)
        text.append(_level(content, dims, config.noise, g))

    labels = _labels(s_a, s_b, config.classes, g)
    order = torch.randperm(n, generator=g)
    splits = {
        "train": order[: config.train],
        "dev": order[config.train : config.train + config.dev],
        "test": order[config.train + config.dev :],
    }
    return FeatureSet(
        modalities=SYNTHETIC_MODALITIES,
        levels=(tuple(image), tuple(text)),
        splits=splits,
        labels=labels,
        label_names=tuple(f"label{j}" for j in range(config.classes)),
        source=f"synthetic(seed={config.seed})",
    )


def planted_recovery(input_nodes_used: set[str], planted: tuple[str, ...]) -> float:
    """Jaccard overlap between the input nodes a genotype fuses and the planted ones, in [0, 1]."""
    planted_set = set(planted)
    union = input_nodes_used | planted_set
    return len(input_nodes_used & planted_set) / len(union) if union else 1.0
