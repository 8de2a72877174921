import math

import pytest
import torch

from ssnas.baselines import load_baseline
from ssnas.config.runtime import Runtime
from ssnas.config.stages import FinetuneConfig, PretrainConfig
from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.data.splits import halves, labeled_subset
from ssnas.errors import ConfigError, DatasetError
from ssnas.nas.fixed import FixedNet
from ssnas.reporting import InMemoryReporter
from ssnas.stages.finetune import finetune
from ssnas.stages.pretrain import pretrain
from tests.test_search import forbid_labels

CPU = Runtime(seed=0, device="cpu")


@pytest.fixture(scope="module")
def genotype():
    return load_baseline("bmnas-mmimdb")


def test_pretrain_reads_no_labels_and_keeps_the_best_dev_epoch(tiny_features, tiny_space, genotype):
    reporter = InMemoryReporter()
    result = pretrain(forbid_labels(tiny_features), genotype, tiny_space, PretrainConfig(min_steps=0, epochs=3, batch_size=32),
                      ViewConfig(), CPU, reporter)
    dev = reporter.values("epoch_loss", split="dev")
    assert len(dev) == 3 and result.dev_loss == min(dev) and dev[result.best_epoch] == result.dev_loss
    network = FixedNet([lv.shape[1] for p in tiny_features.levels for lv in p], genotype, tiny_space)
    network.load_state_dict(result.network_state)  # a complete state of the fixed network


def test_finetune_scores_test_once_with_dev_choices(tiny_features, tiny_space, genotype):
    reporter = InMemoryReporter()
    result = finetune(tiny_features, genotype, tiny_space, FinetuneConfig(min_steps=0, epochs=3, batch_size=32, label_ratio=0.25),
                      CPU, reporter)
    assert result.labeled == math.ceil(0.25 * 192)
    assert set(result.test) == {"weighted", "macro", "micro", "samples"}
    assert all(0.0 <= v <= 1.0 for v in result.test.values())
    dev_weighted = reporter.values("f1_weighted", split="dev")
    assert len(dev_weighted) == 3 and max(dev_weighted) == result.dev["weighted"]
    assert len(reporter.values("f1_weighted", split="test")) == 1  # the test split is read once


def test_finetune_from_a_pretrained_network_and_frozen(tiny_features, tiny_space, genotype):
    pre = pretrain(tiny_features, genotype, tiny_space, PretrainConfig(min_steps=0, epochs=1, batch_size=32), ViewConfig(), CPU,
                   InMemoryReporter())
    frozen_before = {k: v.clone() for k, v in pre.network_state.items()}
    reporter = InMemoryReporter()
    result = finetune(tiny_features, genotype, tiny_space,
                      FinetuneConfig(min_steps=0, epochs=2, batch_size=32, mode="probe"), CPU, reporter,
                      network_state=pre.network_state)
    assert 0.0 <= result.test["weighted"] <= 1.0
    final = reporter.checkpoints[-1][1]["model"]
    for name, value in frozen_before.items():  # a frozen encoder does not move, batch-norm statistics included
        assert torch.equal(final[f"network.{name}"], value), name


def test_labeled_subset_is_seeded_nested_and_sized():
    rows = torch.arange(100, 300)
    small, large = labeled_subset(rows, 0.1, seed=0), labeled_subset(rows, 0.3, seed=0)
    assert small.numel() == 20 and large.numel() == 60
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.equal(small, labeled_subset(rows, 0.1, seed=0))
    assert not torch.equal(small, labeled_subset(rows, 0.1, seed=1))
    assert labeled_subset(rows, 1e-6, seed=0).numel() == 1
    with pytest.raises(ConfigError, match="label_ratio"):
        labeled_subset(rows, 0.0, seed=0)


def test_halves_are_disjoint_and_cover():
    rows = torch.arange(51)
    a, b = halves(rows, seed=0)
    assert set(a.tolist()).isdisjoint(b.tolist()) and set(a.tolist()) | set(b.tolist()) == set(range(51))


def test_finetune_needs_labels(tiny_features, tiny_space, genotype):
    unlabeled = FeatureSet(tiny_features.modalities, tiny_features.levels, tiny_features.splits)
    with pytest.raises(DatasetError, match="labels"):
        finetune(unlabeled, genotype, tiny_space, FinetuneConfig(min_steps=0, epochs=1), CPU, InMemoryReporter())


def test_pretrain_of_a_one_modality_genotype_falls_back_to_instance_views(tiny_features, tiny_space):
    from ssnas.nas.genotype import CellGene, Genotype, StepGene

    image_only = Genotype(
        input_names=tiny_features.node_names,
        cells=(CellGene((0, 1), (StepGene((0, 1), "sum"),), (2,)), CellGene((2, 6), (StepGene((0, 1), "sum"),), (2,))),
        concat=(6, 7),
    )
    reporter = InMemoryReporter()
    pretrain(tiny_features, image_only, tiny_space, PretrainConfig(min_steps=0, epochs=1, batch_size=32), ViewConfig(), CPU, reporter)
    assert any(level == "warning" and "instance policy" in message for level, message in reporter.events)


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_a_stopped_stage_resumes_exactly_where_it_stopped(tiny_features, tiny_space, genotype, stage):
    from ssnas.stages.training import StageStopped

    def run(reporter, resume=None):
        if stage == "pretrain":
            return pretrain(tiny_features, genotype, tiny_space, PretrainConfig(min_steps=0, epochs=2, batch_size=64), ViewConfig(),
                            CPU, reporter, resume=resume)
        return finetune(tiny_features, genotype, tiny_space, FinetuneConfig(min_steps=0, epochs=3, batch_size=32, label_ratio=0.5),
                        CPU, reporter, resume=resume)

    full_reporter = InMemoryReporter()
    full = run(full_reporter)
    stopped = InMemoryReporter(stop_after=2)
    with pytest.raises(StageStopped, match=f"{stage}: stopped on request after step 2"):
        run(stopped)
    resumed_reporter = InMemoryReporter()
    resumed = run(resumed_reporter, resume=stopped.checkpoints[-1][1])
    assert stopped.values("loss") + resumed_reporter.values("loss") == full_reporter.values("loss")
    assert stopped.values("epoch_loss") + resumed_reporter.values("epoch_loss") == full_reporter.values("epoch_loss")
    if stage == "finetune":
        assert resumed.test == full.test and resumed.threshold == full.threshold
    else:
        assert resumed.dev_loss == full.dev_loss


def test_node_data_that_does_not_fit_the_device_batches_the_same_from_host_memory(tiny_features):
    from ssnas.stages.training import NodeData

    resident = NodeData(tiny_features, 4, torch.device("cpu"))
    streamed = NodeData(tiny_features, 4, torch.device("cpu"), device_budget=0)
    assert resident.resident and not streamed.resident
    index = torch.tensor([5, 0, 17, 3])
    for a, b in zip(resident.batch(index), streamed.batch(index)):
        assert torch.equal(a, b)
