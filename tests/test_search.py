import math

import pytest
import torch

from ssnas.config.runtime import Runtime
from ssnas.config.stages import SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.data.pyramids import FeatureSet
from ssnas.errors import ConfigError, DatasetError
from ssnas.nas import architect
from ssnas.nas.genotype import Genotype
from ssnas.reporting import InMemoryReporter
from ssnas.stages.search import search
from ssnas.stages.training import NonFiniteLoss, StageStopped


class LabelsForbidden(FeatureSet):
    """A dataset whose labels raise on any access: what an SSL stage must never touch."""

    @property
    def labels(self):
        raise AssertionError("a self-supervised stage read the labels")

    def without_labels(self):
        return self


def forbid_labels(features: FeatureSet) -> LabelsForbidden:
    return LabelsForbidden(features.modalities, features.levels, features.splits, labels=features._labels,
                           label_names=features.label_names, source="labels-forbidden")


def run(features, space, objective="ssl", epochs=2, seed=0, **options):
    reporter = InMemoryReporter()
    options = {"min_steps": 0, **options}
    config = SearchConfig(objective=objective, epochs=epochs, batch_size=32, **options)
    result = search(features, space, config, ViewConfig(), Runtime(seed=seed, device="cpu"), reporter)
    return result, reporter


def test_ssl_search_reads_no_labels(tiny_features, tiny_space):
    result, reporter = run(forbid_labels(tiny_features), tiny_space)
    assert isinstance(result.genotype, Genotype)


def test_ssl_search_runs_on_a_dataset_without_labels(tiny_features, tiny_space):
    unlabeled = FeatureSet(tiny_features.modalities, tiny_features.levels, tiny_features.splits)
    result, _ = run(unlabeled, tiny_space, epochs=1)
    assert result.genotype.input_names == tiny_features.node_names


@pytest.mark.parametrize("objective", ["supervised", "ssl+supervised"])
def test_objectives_that_read_labels_refuse_a_dataset_without_them(tiny_features, tiny_space, objective):
    unlabeled = FeatureSet(tiny_features.modalities, tiny_features.levels, tiny_features.splits)
    with pytest.raises(DatasetError, match="labels"):
        run(unlabeled, tiny_space, objective=objective, epochs=1)


@pytest.mark.parametrize("objective", ["ssl", "supervised", "ssl+supervised"])
def test_search_reports_weights_and_genotype_every_epoch(tiny_features, tiny_space, objective):
    result, reporter = run(tiny_features, tiny_space, objective=objective, label_ratio=0.5)
    # before training, then after each of the 2 epochs
    assert [epoch for _, epoch, _ in reporter.arch_history] == [0, 0, 1]
    assert [epoch for _, epoch, _ in reporter.genotypes] == [0, 1]
    assert len(result.genotypes) == 2 and result.genotype == reporter.genotypes[-1][2]
    losses = reporter.values("loss", split="train")
    assert losses and all(math.isfinite(v) for v in losses)
    assert reporter.checkpoints[-1][0] == 1
    records = reporter.arch_history[-1][2].records()
    assert {r.kind for r in records} == {"cell_input", "step_input", "step_op"}
    # the architecture actually moved away from its near-uniform start
    first, last = reporter.arch_history[0][2], reporter.arch_history[-1][2]
    assert first.step_op != last.step_op


def test_search_is_repeatable_bit_for_bit_on_cpu(tiny_features, tiny_space):
    a, ra = run(tiny_features, tiny_space, seed=3)
    b, rb = run(tiny_features, tiny_space, seed=3)
    c, rc = run(tiny_features, tiny_space, seed=4)
    assert ra.values("loss") == rb.values("loss")
    assert a.arch_weights == b.arch_weights
    assert ra.values("loss") != rc.values("loss")


@pytest.mark.parametrize("stop_after", [4, 6])  # 3 steps per epoch: mid-epoch, and at an epoch's end
def test_a_stopped_search_resumes_exactly_where_it_stopped(tiny_features, tiny_space, stop_after):
    config = SearchConfig(min_steps=0, objective="ssl", epochs=3, batch_size=32)
    runtime = Runtime(seed=1, device="cpu")
    full_reporter = InMemoryReporter()
    full = search(tiny_features, tiny_space, config, ViewConfig(), runtime, full_reporter)
    assert len(full_reporter.values("loss")) == 9

    stopped = InMemoryReporter(stop_after=stop_after)
    with pytest.raises(StageStopped, match=f"search: stopped on request after step {stop_after}"):
        search(tiny_features, tiny_space, config, ViewConfig(), runtime, stopped)
    state = stopped.checkpoints[-1][1]
    assert state["position"]["step"] == stop_after
    resumed_reporter = InMemoryReporter()
    resumed = search(tiny_features, tiny_space, config, ViewConfig(), runtime, resumed_reporter, resume=state)
    assert stopped.values("loss") + resumed_reporter.values("loss") == full_reporter.values("loss")
    assert stopped.values("epoch_loss") + resumed_reporter.values("epoch_loss") == full_reporter.values("epoch_loss")
    assert resumed.arch_weights == full.arch_weights
    assert resumed.genotypes == full.genotypes


def test_second_order_search_runs(tiny_features, tiny_space):
    result, reporter = run(tiny_features, tiny_space, objective="supervised", epochs=1, order="second")
    assert all(math.isfinite(v) for v in reporter.values("loss"))


def test_second_order_gradient_matches_the_analytic_one():
    # L_train = 1/2 |w - a|^2, L_val = 1/2 |w - c|^2: after w' = w - xi (w - a),
    # d L_val(w') / da = xi (w' - c), which the finite-difference estimate gets exactly.
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    a = torch.nn.Parameter(torch.randn(5))
    c = torch.randn(5)
    xi = 0.3
    expected = xi * (w.detach() - xi * (w.detach() - a.detach()) - c)
    w_before = w.detach().clone()
    architect.second_order([a], [w], lambda: 0.5 * ((w - a) ** 2).sum(), lambda: 0.5 * ((w - c) ** 2).sum(), xi)
    torch.testing.assert_close(a.grad, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(w.detach(), w_before)  # the virtual step is undone



def test_a_diverging_search_fails_with_a_clear_reason(tiny_features, tiny_space):
    broken_levels = tuple(tuple(level.clone() for level in pyramid) for pyramid in tiny_features.levels)
    broken_levels[0][0][:] = float("nan")
    broken = FeatureSet(tiny_features.modalities, broken_levels, tiny_features.splits, labels=tiny_features._labels)
    with pytest.raises(NonFiniteLoss, match="search: loss became nan in epoch 0"):
        run(broken, tiny_space, objective="supervised", epochs=1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("objective", "contrastive", "search.objective"), ("order", "third", "search.order"),
     ("temperature", 0.0, "search.temperature"), ("label_ratio", 1.5, "search.label_ratio"),
     ("epochs", 0, "search.epochs")],
)
def test_bad_search_settings_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        SearchConfig(min_steps=0, **{field: value})


def test_search_weights_leave_uniform_on_a_clear_signal(tiny_features, tiny_space):
    """The planted fusion gives the search something to find: at the default arch_lr its weights
    move to a decision within a few hundred steps; at BM-NAS's 3e-4 they stay at uniform and the
    search says so."""
    decided, reporter = run(tiny_features, tiny_space, epochs=3, min_steps=150)
    assert decided.certainty.decided and decided.certainty.min_top_ratio >= 1.5
    assert decided.certainty.mean_entropy < 0.85
    assert reporter.values("arch_top_ratio", split="arch")[-1] == decided.certainty.min_top_ratio
    stuck, reporter = run(tiny_features, tiny_space, objective="supervised", epochs=3, min_steps=150, arch_lr=3e-4)
    assert not stuck.certainty.decided and stuck.certainty.mean_entropy > 0.99
    assert any(level == "warning" and "undecided" in message for level, message in reporter.events)
