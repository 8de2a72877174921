"""Frozen unimodal backbones that turn raw inputs into feature pyramids.

Every encoder is an `nn.Module` that stays in eval mode with frozen weights (`train()` cannot switch
it back: batch-norm statistics and dropout must not move while features are extracted), and
`encode(batch) -> list[Tensor]` returns its levels in increasing depth, on the encoder's device.
`encode_in_batches` runs one over a whole dataset with bounded memory. Weights come only from local
files the user names; `weights_path=None` means random initialisation (tests, smoke runs).

Torchvision and transformers are imported inside the classes that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ssnas.errors import DatasetError

# ImageNet statistics that torchvision's VGG weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# BM-NAS's MM-IMDB image levels (DESIGN.md 1.1).
BMNAS_VGG_TAPS = ("relu4_1", "relu4_4", "relu5_3", "pool5")


class PyramidEncoder(Protocol):
    """What `encode_in_batches` needs: a batch -> levels function."""

    def encode(self, batch: Any) -> list[torch.Tensor]: ...


class _FrozenEncoder(nn.Module):
    """Base of the encoders: frozen parameters, always in eval mode."""

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> _FrozenEncoder:
        return super().train(False)

    @property
    def device(self) -> torch.device:
        first = next(chain(self.parameters(), self.buffers()), None)
        return first.device if first is not None else torch.device("cpu")


def encode_in_batches(
    encoder: PyramidEncoder,
    inputs: Any,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[torch.Tensor]:
    """Encode `inputs` (anything with `len()` and slicing: a tensor, an h5py dataset, a list of
    strings) `batch_size` rows at a time; returns the levels as float32 CPU tensors.

    The outputs are allocated once after the first batch and filled in place, so peak memory is
    the result plus one batch, never a list of batches plus their concatenation.
    `progress(done, total)` is called after each batch.
    """
    total = len(inputs)
    if total == 0:
        raise DatasetError("inputs: no rows to encode")
    if batch_size < 1:
        raise DatasetError(f"batch_size: {batch_size} is not a positive number")
    outputs: list[torch.Tensor] | None = None
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        levels = encoder.encode(inputs[start:stop])
        if outputs is None:
            outputs = [torch.empty((total, *level.shape[1:]), dtype=torch.float32) for level in levels]
        for out, level in zip(outputs, levels, strict=True):
            out[start:stop] = level.detach().float().cpu()
        if progress is not None:
            progress(stop, total)
    assert outputs is not None
    return outputs


def _load_state_dict(module: nn.Module, path: str | Path, what: str) -> None:
    """Load `module`'s parameters from a local checkpoint, tolerating the usual wrappers.

    Accepts a bare state_dict or one under "state_dict" / "model"; keys may carry a common prefix
    ("module.", "text_net.", ...) and keys the module does not have (a classifier head) are ignored.
    Every key the module has must be present with the right shape.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: {what} weights: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        raise DatasetError(f"{path}: {what} weights: cannot be read as a state_dict ({exc})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise DatasetError(f"{path}: {what} weights: expected a state_dict, got {type(state).__name__}")
    wanted = module.state_dict()
    prefix = _best_prefix(wanted, state)
    selected = {}
    for key, value in wanted.items():
        tensor = state.get(prefix + key)
        if not isinstance(tensor, torch.Tensor):
            raise DatasetError(f"{path}: {prefix + key}: missing from the {what} weights")
        if tensor.shape != value.shape:
            raise DatasetError(
                f"{path}: {prefix + key}: shape {tuple(tensor.shape)}, expected {tuple(value.shape)} for {what}"
            )
        selected[key] = tensor
    module.load_state_dict(selected)


def _best_prefix(wanted: dict[str, torch.Tensor], state: dict[str, Any]) -> str:
    """The key prefix ("" or e.g. "module.") under which `state` holds most of `wanted`'s keys."""
    first = next(iter(wanted))
    candidates = [""] + sorted({k[: -len(first)] for k in state if k.endswith("." + first)}, key=len)
    return max(candidates, key=lambda prefix: sum(prefix + key in state for key in wanted))


def vgg19_layer_names() -> list[str]:
    """Names of torchvision's `vgg19().features` modules in order: conv1_1, relu1_1, ..., pool5.

    Derived from the module structure itself (blocks end at each MaxPool), so a tap name always
    points at the module it says.
    """
    from torchvision.models import vgg19

    with torch.device("meta"):
        features = vgg19().features
    names, block, conv = [], 1, 0
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        elif isinstance(layer, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            names.append(f"{type(layer).__name__.lower()}{block}_{conv}")
    return names


class VGG19Pyramid(_FrozenEncoder):
    """Torchvision VGG19 features tapped at several depths (BM-NAS: relu4_1, relu4_4, relu5_3, pool5).

    `encode(images)` takes RGB images in [0, 1], (N, 3, H, W) of any size, normalises them with the
    ImageNet statistics the weights expect, and returns one (N, channels, h, w) map per tap.
    Only the layers up to the deepest tap are kept and run. `map_side` adaptive-max-pools every map
    to map_side x map_side inside `encode`, so a large dataset never holds full-size maps.
    """

    mean: torch.Tensor  # buffers (ImageNet statistics), registered in __init__
    std: torch.Tensor

    def __init__(
        self,
        weights_path: str | Path | None = None,
        taps: Sequence[str] = BMNAS_VGG_TAPS,
        map_side: int | None = None,
    ) -> None:
        super().__init__()
        from torchvision.models import vgg19

        names = vgg19_layer_names()
        unknown = [t for t in taps if t not in names]
        if unknown or not taps:
            raise DatasetError(f"vgg19: taps: {unknown or list(taps)} not among {names}")
        self.tap_indices = sorted({names.index(t) for t in taps})
        self.map_side = map_side
        # Built on the meta device and materialised only up to the last tap: a full vgg19() spends
        # seconds initialising a 120M-parameter classifier that is never used.
        with torch.device("meta"):
            features = vgg19().features[: self.tap_indices[-1] + 1]
        self.features = features.to_empty(device="cpu")
        if weights_path is None:
            _init_vgg(self.features)
        else:
            _load_state_dict(self, weights_path, "vgg19")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (torch.as_tensor(images, dtype=torch.float32).to(self.device) - self.mean) / self.std
        levels = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.tap_indices:
                levels.append(x if self.map_side is None else F.adaptive_max_pool2d(x, self.map_side))
        return levels


def _init_vgg(features: nn.Sequential) -> None:
    """Torchvision's own VGG initialisation, for random-weight encoders."""
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:  # VGG's convolutions all have one
                nn.init.zeros_(layer.bias)


class _Maxout(nn.Module):
    """Linear to `out * pieces` units, max over the pieces (as in GMU and BM-NAS)."""

    def __init__(self, d_in: int, d_out: int, pieces: int) -> None:
        super().__init__()
        self.d_out, self.pieces = d_out, pieces
        self.lin = nn.Linear(d_in, d_out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).view(*x.shape[:-1], self.d_out, self.pieces).amax(-1)


class TextMLPPyramid(_FrozenEncoder):
    """BM-NAS's MM-IMDB text branch: a maxout MLP over 300-d word2vec plot features.

    Levels are the hidden maxout outputs (64 and 128 dims by default), each (N, hidden). Module
    names follow BM-NAS's `MaxOut_MLP` (op1 = maxout, op2 = batch norm + dropout, op3 = maxout, ...),
    so its `text_net` state_dict loads as is; its classifier head is ignored.
    """

    def __init__(
        self,
        input_dim: int = 300,
        hidden: Sequence[int] = (64, 128),
        weights_path: str | Path | None = None,
        pieces: int = 5,
    ) -> None:
        super().__init__()
        if not hidden:
            raise DatasetError("text mlp: hidden: needs at least one level")
        self.num_levels = len(hidden)
        d_in = input_dim
        for k, d_out in enumerate(hidden):
            self.add_module(f"op{2 * k + 1}", _Maxout(d_in, d_out, pieces))
            if k + 1 < len(hidden):
                self.add_module(f"op{2 * k + 2}", nn.Sequential(nn.BatchNorm1d(d_out), nn.Dropout(0.5)))
            d_in = d_out
        if weights_path is not None:
            _load_state_dict(self, weights_path, "text mlp")
        self.freeze()

    @torch.no_grad()
    def encode(self, features: torch.Tensor) -> list[torch.Tensor]:
        x = torch.as_tensor(features, dtype=torch.float32).to(self.device)
        levels = []
        for k in range(self.num_levels):
            if k:
                x = getattr(self, f"op{2 * k}")(x)
            x = getattr(self, f"op{2 * k + 1}")(x)
            levels.append(x)
        return levels


class TransformerTextPyramid(_FrozenEncoder):
    """Hidden states of a local `transformers` text encoder at chosen layers, as sequences.

    `layers` index the model's hidden states (0 = embeddings, -1 = last layer); levels come in
    increasing depth. `encode(texts)` tokenizes with truncation to `max_length` (padding to the
    batch's longest text); then, so that no padding ever reaches the search, each text's real
    tokens (special tokens included, padding excluded) are adaptive-max-pooled to `positions`
    slots: every level is (N, hidden, positions) whatever the text's length. A short text's tokens
    are repeated to fill the slots, which is what max pooling over windows of one token gives.
    """

    def __init__(
        self,
        model_path: str | Path,
        layers: Sequence[int] = (-4, -1),
        max_length: int = 128,
        positions: int = 16,
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = Path(model_path)
        if not path.is_dir():
            raise DatasetError(f"{path}: text model: not a directory (a local save_pretrained folder)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"{path}: text model: cannot be loaded ({exc})") from None
        if self.tokenizer.pad_token is None:  # e.g. GPT-2; padding is masked out, any token will do
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        count = self.model.config.num_hidden_layers + 1
        resolved = [layer + count if layer < 0 else layer for layer in layers]
        if not layers or any(not 0 <= r < count for r in resolved) or len(set(resolved)) != len(resolved):
            raise DatasetError(
                f"{path}: layers: {list(layers)} must be distinct hidden-state indices in "
                f"-{count}..{count - 1} (the model has {count - 1} layers plus embeddings)"
            )
        self.layers = sorted(resolved)
        self.max_length = max_length
        self.positions = positions
        self.freeze()

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> list[torch.Tensor]:
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**batch, output_hidden_states=True).hidden_states
        real = batch["attention_mask"].bool()
        real[:, 0] |= ~real.any(1)  # a text with no tokens at all keeps one (padding) position
        return [self._pool_tokens(hidden[layer].transpose(1, 2), real) for layer in self.layers]

    def _pool_tokens(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(N, hidden, tokens) -> (N, hidden, positions), pooling each text's unmasked tokens only
        (the mask, not a position, marks padding, so left-padding tokenizers work too)."""
        return torch.stack(
            [F.adaptive_max_pool1d(states[i][:, real[i]], self.positions) for i in range(states.shape[0])]
        )
