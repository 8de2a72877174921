"""The small registry the read-only commands are tested on, and documented with (docs/cli.md's examples).

Four runs: an SSL search (finished, tagged `paper`, files on disk), a supervised search (failed), a
fine-tune child of the SSL search (finished, F1s) and a search whose worker is gone (running, or lost);
optionally a paper sweep's group for `ssnas report`. Run ids are chosen, not drawn, so that outputs can
be written down: tests/test_cli_inspect.py uses ids that tell the runs apart at a glance, the docs
realistic ones.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

import ssnas.registry as registry_module
from ssnas.baselines import load_baseline
from ssnas.nas.derive import ArchWeights
from ssnas.nas.genotype import Genotype
from ssnas.nas.vocabulary import DEFAULT_PRIMITIVES
from ssnas.registry import Registry, this_host

INPUTS = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
GROUP = "g0123456789a"


def recipe(objective: str, label_ratio: float, seed: int, stage: str = "search") -> dict:
    """A resolved recipe as `Recipe.to_dict()` stores it (trimmed)."""
    return {
        "run": {"name": f"{objective}_search", "stage": stage, "seed": seed, "device": "auto", "bf16": False,
                "tags": [], "genotype": None},
        "data": {"dataset": "synthetic", "path": None, "label_ratio": label_ratio, "batch_size": 64,
                 "synthetic": {"train": 2048, "dev": 512, "test": 512}},
        "space": {"cells": 2, "steps": 1, "channels": 32, "positions": 16, "primitives": list(DEFAULT_PRIMITIVES),
                  "cell_multiplier": 2},
        "search": {"objective": objective, "epochs": 3, "lr": 0.001, "arch_lr": 0.0003, "temperature": 0.2},
        "finetune": {"epochs": 3, "lr": 0.001},
        "sweep": {},
    }


def peaked(n: int, best: int, top: float = 0.6) -> list[float]:
    return [top if i == best else (1 - top) / (n - 1) for i in range(n)]


def arch_weights(cell0_x: int) -> ArchWeights:
    """A 2-cell, 1-step space over the synthetic inputs; cell0's slot x favours input `cell0_x`."""
    return ArchWeights(
        input_names=INPUTS, primitives=DEFAULT_PRIMITIVES,
        cell_input=((peaked(6, cell0_x), peaked(6, 4)), (peaked(7, 4), peaked(7, 6))),
        step_input=(((peaked(2, 1), peaked(2, 0)),), ((peaked(2, 0), peaked(2, 1)),)),
        step_op=((peaked(5, 4, 0.5),), (peaked(5, 1, 0.4),)),
        cell_multiplier=2,
    )


def searched_genotype() -> Genotype:
    """BM-NAS's MM-IMDB genotype with cell 1 fusing by `sum` instead of `linear_glu`."""
    base = load_baseline("bmnas-mmimdb")
    cell1 = base.cells[1]
    step = dataclasses.replace(cell1.steps[0], primitive="sum")
    return Genotype(base.input_names, (base.cells[0], dataclasses.replace(cell1, steps=(step,))), base.concat)


@contextmanager
def chosen_ids(ids: Sequence[str]) -> Iterator[None]:
    """New runs get `ids`, in order, instead of random ones."""
    remaining = iter(ids)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry_module, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(remaining))))
        yield


def build(runs: Path, ids: Sequence[str], host: str | None = None, lost: bool = False) -> None:
    """The four runs, with `ids` (SSL search, supervised search, fine-tune, dead worker's search). `host` is
    where the finished and failed runs ran (default: this machine); `lost`: the dead worker's run already
    marked lost, as the scheduler's next pass would."""
    host = host or this_host()
    with chosen_ids(ids), Registry(runs / "registry.db") as registry:
        ssl = add_search(registry, runs, "ssl", 0.1, 0, host, tags=["paper"])
        add_search(registry, runs, "supervised", 0.01, 1, host)
        add_finetune(registry, runs, ssl, host)
        add_lost(registry, runs)
        if lost:
            registry.reconcile()


def create(registry: Registry, runs: Path, name: str, stage: str, config: dict, created: float, host: str,
           **fields) -> str:
    run_id = registry.create_run(name=name, stage=stage, config=config, dataset="synthetic",
                                 label_ratio=config["data"]["label_ratio"], seed=config["run"]["seed"],
                                 group_id=GROUP, git_commit="abc1234", host=host,
                                 versions={"python": "3.11.9", "ssnas": "0.1.0"}, **fields)
    registry.update_run(run_id, run_dir=str(runs / run_id), created_at=T0 + created)
    return run_id


def add_search(registry: Registry, runs: Path, objective: str, ratio: float, seed: int, host: str,
               tags: Sequence[str] = ()) -> str:
    run_id = create(registry, runs, f"{objective}_search", "search", recipe(objective, ratio, seed), seed * 60, host,
                    objective=objective, tags=tags, recipe_path="recipes/ssl_search.toml")
    registry.start_run(run_id, pid=4242, host=host, device="cuda:0")
    for epoch in range(3):
        registry.add_metrics([(run_id, 2 * epoch + i, epoch, "train", "loss", 2.0 - 0.25 * (2 * epoch + i), T0)
                              for i in range(2)])
        registry.add_metrics([(run_id, 2 * epoch + 1, epoch, "train", "epoch_loss", 1.9 - 0.5 * epoch, T0),
                              (run_id, 2 * epoch + 1, epoch, "arch", "epoch_loss", 2.1 - 0.5 * epoch, T0)])
        records = arch_weights(0 if epoch == 0 else 2).records()
        registry.add_arch_weights([(run_id, 2 * epoch + 1, epoch, r.kind, r.cell, r.step, r.slot, r.choice, r.weight)
                                   for r in records])
        genotype = load_baseline("bmnas-mmimdb") if epoch < 2 or objective != "ssl" else searched_genotype()
        registry.add_genotype(run_id, 2 * epoch + 1, epoch, genotype.to_json())
    registry.add_events([(run_id, T0 + i, "info", f"event {i}") for i in range(1, 13)])
    if objective == "ssl":
        registry.finish_run(run_id, "finished")
        folder = runs / run_id
        (folder / "tb").mkdir(parents=True)
        (folder / "tb" / "events.out.tfevents").write_bytes(b"x" * 10)
        (folder / "checkpoint.pt").write_bytes(b"x" * 2048)
        searched_genotype().save(folder / "genotype.json")
    else:
        registry.heartbeat(run_id, progress=0.4)
        registry.finish_run(run_id, "failed", error="RuntimeError: CUDA out of memory")
    registry.update_run(run_id, started_at=T0 + seed * 60 + 5, ended_at=T0 + seed * 60 + 88, worked_seconds=83)
    return run_id


def add_finetune(registry: Registry, runs: Path, parent: str, host: str) -> str:
    run_id = create(registry, runs, "ssl_search/finetune", "finetune", recipe("ssl", 0.1, 0, "finetune"), 120, host,
                    objective="ssl", parent_id=parent)
    registry.start_run(run_id, pid=4243, host=host, device="cpu")
    for epoch, f1 in enumerate((0.41, 0.55, 0.52)):
        registry.add_metrics([(run_id, epoch, epoch, "train", "loss", 0.7 - 0.1 * epoch, T0),
                              (run_id, epoch, epoch, "dev", "f1_weighted", f1, T0),
                              (run_id, epoch, epoch, "dev", "f1_macro", f1 - 0.1, T0)])
    registry.add_metrics([(run_id, 3, None, "test", key, value, T0) for key, value in
                          (("f1_weighted", 0.512), ("f1_macro", 0.4), ("f1_micro", 0.6), ("f1_samples", 0.58))])
    registry.add_metrics([(run_id, 3, 1, "dev", "threshold", 0.35, T0)])  # chosen on dev, as finetune logs it
    registry.add_genotype(run_id, 0, 0, load_baseline("bmnas-mmimdb").to_json())  # the network it trained
    registry.finish_run(run_id, "finished")
    registry.update_run(run_id, started_at=T0 + 130, ended_at=T0 + 130 + 3725, worked_seconds=3725)
    (runs / run_id).mkdir(parents=True)
    load_baseline("bmnas-mmimdb").save(runs / run_id / "genotype.json")
    return run_id


def add_lost(registry: Registry, runs: Path) -> str:
    """A running search on this machine whose worker process is gone."""
    run_id = create(registry, runs, "lost_search", "search", recipe("ssl", 1.0, 2), 180, this_host(),
                    objective="ssl")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    registry.start_run(run_id, pid=dead.pid, host=this_host(), device="cuda:1")
    registry.update_run(run_id, heartbeat_at=T0, progress=0.25)
    return run_id


# -- a paper sweep's group, for `ssnas report`

PAPER_NODES = ("image[0]", "image[1]", "image[2]", "image[3]", "text[0]", "text[1]")


def add_paper_group(runs: Path, group: str) -> None:
    """A label-ratio sweep as `recipes/paper_synthetic.toml` leaves it, with made-up scores: arms ssl
    (one SSL search per seed), random, and the three no-search baselines, at r 0.1 and 1.0, three seeds."""
    import random

    from ssnas.nas.genotype import random_genotype

    def genotype(seed: int) -> Genotype:
        return random_genotype(PAPER_NODES, 2, 1, ["sum", "attention", "concat_fc"], 2, random.Random(seed))

    base = {0.1: 0.49, 1.0: 0.67}
    lift = {  # per arm and r, one per seed
        ("ssl", 0.1): (0.03, 0.035, 0.025), ("ssl", 1.0): (0.02, 0.0, 0.012),
        ("random", 0.1): (0.01, 0.008, 0.012), ("random", 1.0): (0.005, 0.008, 0.006),
        ("linear", 0.1): (0.0, -0.002, 0.001), ("linear", 1.0): (0.0, -0.001, 0.0005),
        ("mlp", 0.1): (0.012, 0.01, 0.014), ("mlp", 1.0): (0.006, 0.005, 0.007),
        ("late_fusion", 0.1): (0.004, 0.006, 0.002), ("late_fusion", 1.0): (0.002, 0.003, 0.001)}
    found = (genotype(0), genotype(0), genotype(4))  # what each seed's SSL search found
    with Registry(runs / "registry.db") as registry:
        for seed in range(3):
            search = _paper_run(registry, runs, group, "ssl", None, seed, "search", None)
            registry.add_metrics([(search, 9, 9, "arch", "arch_top_ratio", 1.4 + 0.2 * seed, T0),
                                  (search, 9, 9, "arch", "arch_entropy", 0.6, T0)])
            registry.finish_run(search, "finished")
            registry.update_run(search, worked_seconds=44.0)
            for (arm, ratio), offsets in lift.items():
                nas = {"ssl": found[seed], "random": genotype(seed + 1)}.get(arm)
                _paper_finetune(registry, runs, group, arm, ratio, seed, base[ratio] + offsets[seed],
                                search if arm == "ssl" else None, nas)


def _paper_run(registry: Registry, runs: Path, group: str, arm: str, ratio: float | None, seed: int, stage: str,
               parent: str | None, model: str = "nas") -> str:
    config = {"finetune": {"model": model}, "run": {"seed": seed},
              "data": {"dataset": "synthetic", "synthetic": {"planted_image": 2, "planted_text": 0}}}
    run_id = registry.create_run(name=f"paper[{arm},{ratio},{seed}]/{stage}", stage=stage, config=config, seed=seed,
                                 label_ratio=ratio, group_id=group, tags=["paper", f"arm:{arm}"], dataset="synthetic",
                                 parent_id=parent)
    registry.update_run(run_id, run_dir=str(runs / run_id), created_at=T0)
    registry.start_run(run_id, pid=1, host="node1", device="cpu")
    return run_id


def _paper_finetune(registry: Registry, runs: Path, group: str, arm: str, ratio: float, seed: int, f1: float,
                    parent: str | None, genotype: Genotype | None) -> None:
    model = arm if arm in ("linear", "mlp", "late_fusion") else "nas"
    run_id = _paper_run(registry, runs, group, arm, ratio, seed, "finetune", parent, model)
    folder = runs / run_id
    folder.mkdir(parents=True)
    if genotype is not None:
        genotype.save(folder / "genotype.json")
    registry.add_metrics([(run_id, 9, None, "test", key, value, T0)
                          for key, value in (("f1_weighted", f1), ("f1_macro", f1 - 0.1))])
    (folder / "results.json").write_text(json.dumps({"model": model, "mode": "probe", "steps": 40}))
    registry.finish_run(run_id, "finished")
