"""Stage budgets in optimizer steps: a tiny labeled set still gets its minimum steps."""

import math

import pytest
import torch

from ssnas.baselines import load_baseline
from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, SearchConfig
from ssnas.data.standardize import standardized
from ssnas.errors import ConfigError
from ssnas.reporting import InMemoryReporter
from ssnas.stages.finetune import finetune
from ssnas.stages.training import batch_indices, epoch_batches, keeps_remainder, plan_budget, steps_per_epoch

CPU = Runtime(seed=0, device="cpu")


@pytest.mark.parametrize("count, size, kept", [(120, 64, True), (204, 64, False), (65, 64, False), (3, 2, False),
                                               (30, 64, False), (150, 64, True)])
def test_a_short_last_batch_is_kept_when_dropping_it_would_waste_many_rows(count, size, kept):
    assert keeps_remainder(count, min(size, count)) is kept
    batches = batch_indices(torch.arange(count), size, torch.Generator().manual_seed(0))
    assert len(batches) == steps_per_epoch(count, size)
    used = sum(b.numel() for b in batches)
    assert used == count if kept else used == count - count % min(size, count)


def test_the_budget_grows_passes_not_epochs_until_the_minimum_steps():
    budget = plan_budget(rows=60, batch_size=64, epochs=20, min_steps=300)
    assert budget.per_pass == 1 and budget.epochs == 20 and budget.total >= 300
    assert budget.passes == 15
    assert plan_budget(rows=6000, batch_size=64, epochs=20, min_steps=300).passes == 1  # enough data: as asked
    assert "300 optimizer steps" in budget.describe("finetune")


def test_epoch_batches_are_a_function_of_seed_and_epoch():
    budget = plan_budget(rows=50, batch_size=16, epochs=2, min_steps=40)
    rows = torch.arange(50)
    first = epoch_batches((rows,), budget, seed=3, epoch=1)
    assert len(first) == budget.per_epoch
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, epoch_batches((rows,), budget, seed=3, epoch=1)))


def test_a_tiny_labeled_set_still_gets_its_minimum_steps(tiny_features, tiny_space):
    """r = 0.05 of 192 rows is 10 labels: one step per epoch, yet the stage takes min_steps steps."""
    reporter = InMemoryReporter()
    config = FinetuneConfig(epochs=4, batch_size=32, label_ratio=0.05, min_steps=60, mode="full")
    result = finetune(tiny_features, load_baseline("bmnas-mmimdb"), tiny_space, config, CPU, reporter)
    assert result.labeled == math.ceil(0.05 * 192)
    assert result.steps >= 60 and len(reporter.values("loss")) == result.steps
    assert len(reporter.values("f1_weighted", split="dev")) == 4  # dev checks stay per epoch
    assert any("optimizer steps" in message for _, message in reporter.events)


def test_auto_mode_trains_probe_and_full_and_keeps_the_better_on_dev(tiny_features, tiny_space):
    genotype = load_baseline("bmnas-mmimdb")
    from ssnas.nas.fixed import FixedNet

    network = FixedNet([lv.shape[1] for p in tiny_features.levels for lv in p], genotype, tiny_space)
    reporter = InMemoryReporter()
    config = FinetuneConfig(epochs=2, batch_size=32, label_ratio=0.5, min_steps=0, mode="auto")
    result = finetune(tiny_features, genotype, tiny_space, config, CPU, reporter, network_state=network.state_dict())
    dev = reporter.values("f1_weighted", split="dev")
    assert len(dev) == 3  # the probe is solved once (linear_fit), then two epochs of full training
    assert any("L-BFGS" in message for _, message in reporter.events)
    assert result.mode in ("probe", "full") and result.dev["weighted"] == max(dev)
    steps = [row.step for row in reporter.metrics if row.key == "loss"]
    assert steps == sorted(set(steps))  # one step count across both modes: no step logged twice


def test_patience_stops_when_dev_stops_improving(tiny_features, tiny_space):
    reporter = InMemoryReporter()
    config = FinetuneConfig(epochs=40, batch_size=32, label_ratio=0.5, min_steps=0, mode="full", patience=2, lr=1e-9)
    finetune(tiny_features, load_baseline("bmnas-mmimdb"), tiny_space, config, CPU, reporter)
    assert len(reporter.values("f1_weighted", split="dev")) < 40


def test_budget_settings_are_checked():
    with pytest.raises(ConfigError, match="finetune.min_steps"):
        FinetuneConfig(min_steps=-1)
    with pytest.raises(ConfigError, match="finetune.mode"):
        FinetuneConfig(mode="frozen")
    with pytest.raises(ConfigError, match="search.relaxation"):
        SearchConfig(relaxation="hard")
    with pytest.raises(ConfigError, match="search.tau_min"):
        SearchConfig(tau_min=5.0, tau_max=1.0)


def test_standardization_uses_training_rows_only(tiny_features):
    scaled = standardized(tiny_features)
    train = tiny_features.splits["train"]
    level = scaled.levels[1][0]  # a vector level: (N, channels)
    assert torch.allclose(level[train].mean(0), torch.zeros(level.shape[1]), atol=1e-5)
    assert torch.allclose(level[train].std(0, unbiased=False), torch.ones(level.shape[1]), atol=1e-4)
    assert not torch.allclose(level.mean(0), torch.zeros(level.shape[1]), atol=1e-5)  # dev/test not used
