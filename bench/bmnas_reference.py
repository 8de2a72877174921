"""BM-NAS's own MM-IMDB search step, timed on random backbone features: the reference for bench/search_speed.py.

BM-NAS (Yin et al., AAAI 2022; github.com/Somedaywilldo/BM-NAS) searches MM-IMDB with first-order
DARTS: its training loop (`models/search/train_searchable/mmimdb.py`) updates the network weights
on the batches of the train split, then its `Architect` updates the architecture weights on those
of the dev split. One step here is one of each, on separate batches of random tensors:

- network update, as that loop makes it: zero the gradients, forward, BCE-with-logits loss, the
  `LRCosineAnnealingScheduler` step and its `update_optimizer`, backward, Adam step (lr 1e-3,
  weight decay 1e-4, on `central_params`: the six reshape layers, the fusion network, the classifier);
- architecture update: `Architect.step` (Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3).

The model is the searchable network of `models/search/mmimdb_darts_searchable.py` without its
backbones: BM-NAS's six `ReshapeInputLayer_MMIMDB`, its `FusionNetwork` and a linear classifier over
C * L * multiplier features, built from the checkout with the arguments of its MM-IMDB search
(C=192, L=16, 2 step nodes of 1 inner step, cell multiplier 2, dropout 0.1, 23 labels). The
backbones (VGG19 over posters, the MaxOut MLP over text) are left out, as the features ours reads
are cached: their parameters are outside BM-NAS's optimizer, but it runs them on every step.

Inputs: BM-NAS's reshape layers take VGG19's relu4_1, relu4_4, relu5_3 and pool5 maps at full
size and max-pool them to 4 x 4 themselves; for GMU's 256 x 160 posters those are 32 x 20, 32 x 20,
16 x 10 and 8 x 5 (`--maps vgg`, the default). `--maps pooled` gives 4 x 4 maps, the shapes ours
reads (its feature cache pools once). Text vectors are 64 and 128 wide (the MaxOut MLP's two levels).

Only the checkout's code is run; nothing of it is copied. Shims: `IPython` (imported by BM-NAS for
a debugging `embed`, never called) is stubbed when it is not installed; nothing else is patched
(BM-NAS's architecture weights are plain tensors that `.to(device)` does not move; on a CPU that
is where they already are, and on CUDA BM-NAS multiplies by them as CPU scalars, as it always has).

    python bench/bmnas_reference.py --bmnas /path/to/BM-NAS [--steps 30] [--batch 96] [--maps vgg|pooled]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

# BM-NAS's MM-IMDB search arguments (main_darts_searchable_mmimdb.py's defaults, except the batch size,
# which is the bench's: BM-NAS's default is 8)
SEARCH_ARGS = {
    "C": 192, "L": 16, "multiplier": 2, "steps": 2, "node_steps": 1, "node_multiplier": 1,
    "num_input_nodes": 6, "num_keep_edges": 2, "num_outputs": 23, "drpt": 0.1,
    "arch_learning_rate": 3e-4, "arch_weight_decay": 1e-3, "weight_decay": 1e-4,
    "eta_max": 1e-3, "eta_min": 1e-6, "Ti": 1, "Tm": 2, "parallel": False,
}
MAP_CHANNELS = 512
VGG_SIDES = ((32, 20), (32, 20), (16, 10), (8, 5))  # relu4_1, relu4_4, relu5_3, pool5 of VGG19 at 256 x 160
POOLED_SIDES = ((4, 4),) * 4
TEXT_DIMS = (64, 128)
TRAIN_ROWS = 15552  # MM-IMDB's train split: BM-NAS's scheduler counts its batches per epoch from it
WARMUP = 3


def check_checkout(path: str | Path) -> Path:
    """The checkout's root, or ValueError saying what is missing."""
    root = Path(path).expanduser().resolve()
    for needed in ("models/search/darts/model_search.py", "models/search/darts/architect.py",
                   "models/auxiliary/aux_models.py", "models/auxiliary/scheduler.py"):
        if not (root / needed).is_file():
            raise ValueError(f"{root} is not a BM-NAS checkout: {needed} is missing")
    return root


def _import_bmnas(root: Path) -> dict[str, types.ModuleType]:
    """BM-NAS's modules, imported from the checkout (its packages are top-level `models.*`)."""
    if importlib.util.find_spec("IPython") is None:
        stub = types.ModuleType("IPython")
        stub.embed = lambda *args, **kwargs: None  # BM-NAS imports it for debugging only
        sys.modules["IPython"] = stub
    sys.path.insert(0, str(root))
    names = {"search": "models.search.darts.model_search", "architect": "models.search.darts.architect",
             "aux": "models.auxiliary.aux_models", "scheduler": "models.auxiliary.scheduler"}
    modules = {key: importlib.import_module(name) for key, name in names.items()}
    for module in modules.values():  # a `models` package elsewhere on the path would shadow BM-NAS's
        if not str(Path(module.__file__).resolve()).startswith(str(root)):
            raise ValueError(f"{module.__name__} was imported from {module.__file__}, not from {root}")
    return modules


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def bmnas_step_rate(path: str | Path, steps: int = 30, batch: int = 96, device: str = "cpu",
                    maps: str = "vgg", seed: int = 0) -> dict:
    """Samples per second of BM-NAS's search step (one network and one architecture update, each on
    its own batch of `batch` rows) over `steps` steps after a warm-up of 3; fp32, on `device`."""
    import torch
    from torch import nn

    if steps <= WARMUP:
        raise ValueError(f"steps must exceed the warm-up of {WARMUP}")
    if maps not in ("vgg", "pooled"):
        raise ValueError(f"maps: {maps!r} is not 'vgg' or 'pooled'")
    root = check_checkout(path)
    bm = _import_bmnas(root)
    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))  # as ours does (ssnas.stages.runtime)
    torch.manual_seed(seed)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)

    args = argparse.Namespace(**SEARCH_ARGS, batchsize=batch)
    criterion = nn.BCEWithLogitsLoss()
    widths = [MAP_CHANNELS] * len(VGG_SIDES) + list(TEXT_DIMS)
    reshape = nn.ModuleList(bm["aux"].ReshapeInputLayer_MMIMDB(w, args.C, args.L, args) for w in widths)
    fusion = bm["search"].FusionNetwork(steps=args.steps, multiplier=args.multiplier,
                                        num_input_nodes=args.num_input_nodes, num_keep_edges=args.num_keep_edges,
                                        args=args, criterion=criterion)
    classifier = nn.Linear(args.C * args.L * args.multiplier, args.num_outputs)

    class Backboneless(nn.Module):
        """BM-NAS's searchable MM-IMDB network from the reshape layers on (its backbones' outputs are the input)."""

        def __init__(self) -> None:
            super().__init__()
            self.reshape_layers, self.fusion_net, self.central_classifier = reshape, fusion, classifier

        def forward(self, features):
            reshaped = [layer(x) for layer, x in zip(self.reshape_layers, features, strict=True)]
            return self.central_classifier(self.fusion_net(reshaped))

        def arch_parameters(self):
            return self.fusion_net.arch_parameters()

    model = Backboneless().to(dev)
    # the parameter groups of Searchable_Image_Text_Net.central_params
    groups = [{"params": m.parameters()} for m in (model.reshape_layers, model.fusion_net, model.central_classifier)]
    optimizer = torch.optim.Adam(groups, lr=args.eta_max, weight_decay=args.weight_decay)
    scheduler = bm["scheduler"].LRCosineAnnealingScheduler(args.eta_max, args.eta_min, args.Ti, args.Tm,
                                                           TRAIN_ROWS / batch)
    arch_optimizer = torch.optim.Adam(model.arch_parameters(), lr=args.arch_learning_rate, betas=(0.5, 0.999),
                                      weight_decay=args.arch_weight_decay)
    architect = bm["architect"].Architect(model, args, criterion, arch_optimizer)

    sides = VGG_SIDES if maps == "vgg" else POOLED_SIDES
    g = torch.Generator().manual_seed(seed)

    def draw() -> tuple[list, object]:
        features = [torch.randn(batch, MAP_CHANNELS, h, w, generator=g) for h, w in sides]
        features += [torch.randn(batch, d, generator=g) for d in TEXT_DIMS]
        labels = (torch.rand(batch, args.num_outputs, generator=g) < 0.1).float()
        return [f.to(dev) for f in features], labels.to(dev)

    # a few distinct batches per split, drawn before the clock (BM-NAS's loader hands it ready tensors)
    train = [draw() for _ in range(2)]
    dev_batches = [draw() for _ in range(2)]

    def step(i: int) -> float:
        model.train()
        features, labels = train[i % len(train)]
        optimizer.zero_grad()
        loss = criterion(model(features), labels)
        scheduler.step()
        scheduler.update_optimizer(optimizer)
        loss.backward()
        optimizer.step()
        features, labels = dev_batches[i % len(dev_batches)]
        architect.step(features, labels, None)
        return loss.item()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    started = time.perf_counter()
    for i in range(WARMUP):
        step(i)
    sync()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(WARMUP, steps):
        step(i)
    sync()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"samples_per_s": batch * (steps - WARMUP) / elapsed, "samples_per_cpu_s": batch * (steps - WARMUP) / cpu,
            "ms_per_step": 1000 * elapsed / (steps - WARMUP),
            "steps": steps, "batch": batch, "maps": maps, "device": str(dev), "threads": torch.get_num_threads(),
            "precision": "fp32", "commit": _git_commit(root), "total_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bmnas", required=True, help="path of a BM-NAS checkout")
    parser.add_argument("--steps", type=int, default=30, help="timed steps plus the 3 of warm-up")
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--maps", default="vgg", choices=("vgg", "pooled"),
                        help="image maps as BM-NAS reads them (VGG19 at 256 x 160) or pooled to 4 x 4 as ours")
    parser.add_argument("--json", action="store_true", help="print one JSON line (what search_speed.py reads)")
    args = parser.parse_args()
    result = bmnas_step_rate(args.bmnas, args.steps, args.batch, args.device, args.maps)
    if args.json:
        print(json.dumps(result))
        return
    print(f"BM-NAS search step ({result['commit'] or 'unknown commit'}), batch {result['batch']}, "
          f"maps {result['maps']}, {result['device']}, {result['threads']} threads, fp32: "
          f"{result['samples_per_s']:.0f} samples/s "
          f"({result['ms_per_step']:.0f} ms per step)")


if __name__ == "__main__":
    main()
