"""Which dataset a run reads and the settings of the datasets that take some (the recipe's `[data]`
subtables): the synthetic generator's and the MM-IMDB loader's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ssnas import plugins
from ssnas.config.kinds import FilePath
from ssnas.data.nodes import SYNTHETIC_MODALITIES, node_name
from ssnas.errors import ConfigError

DATASET_KINDS: tuple[str, ...] = ("synthetic", "mmimdb", "features")  # ssnas.data.datasets.load_dataset


def known_datasets() -> tuple[str, ...]:
    """Every dataset a recipe may name: the built-in kinds, then those of installed plugins (names only)."""
    return plugins.known_names(plugins.DATASETS_GROUP)


def is_plugin_dataset(dataset: str) -> bool:
    """Whether `dataset` names a plugin's dataset rather than a built-in kind (docs/plugins.md)."""
    return dataset not in DATASET_KINDS


# How MM-IMDB's posters are stored: RGB 0..255, GMU's Caffe BGR minus the ImageNet means, or guessed.
Pixels = Literal["auto", "rgb", "caffe_bgr"]


@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded dataset's sizes and planted fusion (`ssnas.data.synthetic` explains the process)."""

    train: int = 2048  # samples in each split
    dev: int = 512
    test: int = 512
    image_levels: int = 4
    image_channels: int = 32
    image_side: int = 4  # maps are side x side
    text_dims: tuple[int, ...] = (64, 128)  # one vector level per entry (BM-NAS's MM-IMDB text levels)
    shared_dim: int = 8  # d: the latent both modalities observe (split into two halves)
    specific_dim: int = 8  # per-modality nuisance latent
    classes: int = 8
    planted_image: int = 2  # which image level carries the shared latent
    planted_text: int = 0  # which text level carries it
    noise: float = 0.5  # per-sample noise on every feature
    cross_noise: float = 1.5  # noise on the half of s a modality sees unclearly
    leak: float = 0.3  # strength of the weak copy of s in non-planted levels
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_dims", tuple(self.text_dims))
        for name in ("train", "dev", "test", "image_levels", "image_channels", "image_side", "classes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.synthetic.{name}: {getattr(self, name)} is out of range (>= 1)")
        if self.shared_dim < 2 or self.shared_dim % 2:
            raise ConfigError(f"data.synthetic.shared_dim: {self.shared_dim} must be even and >= 2")
        if not self.text_dims or min(self.text_dims) < 1:
            raise ConfigError(f"data.synthetic.text_dims: {list(self.text_dims)} needs one or more sizes >= 1")
        if not 0 <= self.planted_image < self.image_levels:
            raise ConfigError(f"data.synthetic.planted_image: {self.planted_image} "
                              f"is not a level (0..{self.image_levels - 1})")
        if not 0 <= self.planted_text < len(self.text_dims):
            raise ConfigError(f"data.synthetic.planted_text: {self.planted_text} "
                              f"is not a level (0..{len(self.text_dims) - 1})")
        for name in ("noise", "cross_noise", "leak", "specific_dim", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"data.synthetic.{name}: {getattr(self, name)} is out of range (>= 0)")

    @property
    def planted_nodes(self) -> tuple[str, str]:
        """Names of the two input nodes the labels depend on."""
        image, text = SYNTHETIC_MODALITIES
        return (node_name(image, self.planted_image), node_name(text, self.planted_text))


@dataclass(frozen=True)
class MMIMDBOptions:
    """How `ssnas.data.mmimdb.load_mmimdb` encodes GMU's MM-IMDB file into pyramids."""

    image_weights: FilePath | None = None  # local VGG19 state_dict; None = random weights
    text_weights: FilePath | None = None  # local text-MLP state_dict; None = random weights
    batch_size: int = 64  # posters (and plots) per encoder batch
    image_size: tuple[int, int] | None = None  # (height, width) posters are resized to before VGG; None = as stored
    limit: int | None = None  # keep the first `limit` rows of each split (quick runs); None = all
    map_side: int = 4  # image maps are max-pooled to map_side x map_side while encoding
    pixels: Pixels = "auto"

    def __post_init__(self) -> None:
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
        for name in ("batch_size", "map_side"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.mmimdb.{name}: {getattr(self, name)} is out of range (>= 1)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"data.mmimdb.limit: {self.limit} is not a positive number of rows")
        if self.image_size is not None and min(self.image_size) < 1:
            raise ConfigError(f"data.mmimdb.image_size: {list(self.image_size)} needs two sizes >= 1 (height, width)")
        if self.pixels not in get_args(Pixels):
            raise ConfigError(f"data.mmimdb.pixels: {self.pixels!r} is not one of {', '.join(get_args(Pixels))}")
