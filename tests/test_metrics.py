import time

import pytest
import torch

from ssnas.errors import ConfigError
from ssnas.metrics import DEFAULT_THRESHOLDS, best_threshold, f1_scores

# Four samples, three classes; class 2 has no positive sample.
TARGETS = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.uint8)
PROBS = torch.tensor([[0.9, 0.2, 0.1], [0.6, 0.4, 0.7], [0.1, 0.8, 0.0], [0.3, 0.1, 0.2]])


def test_f1_at_half():
    # pred @0.5 = [[1,0,0], [1,0,1], [0,1,0], [0,0,0]]
    # class 0: tp 2 fp 0 fn 0 -> 1;  class 1: tp 1 fn 1 -> 2/3;  class 2: fp 1, support 0 -> 0
    # weighted = (2*1 + 2*2/3 + 0*0) / 4 = 5/6;  macro = (1 + 2/3 + 0) / 3 = 5/9
    # micro: tp 3 fp 1 fn 1 -> 6 / 8;  samples: 1, 2/(2+1+1), 1, 0 (empty and empty) -> 2.5 / 4
    scores = f1_scores(PROBS, TARGETS, 0.5)
    assert scores == pytest.approx({"weighted": 5 / 6, "macro": 5 / 9, "micro": 0.75, "samples": 0.625})
    assert all(isinstance(v, float) for v in scores.values())


def test_f1_class_without_support_or_predictions():
    # pred @0.75 = [[1,0,0], [0,0,0], [0,1,0], [0,0,0]]
    # class 0: tp 1 fn 1 -> 2/3;  class 1: tp 1 fn 1 -> 2/3;  class 2: nothing -> 0, weight 0
    # weighted = (2*2/3 + 2*2/3) / 4 = 2/3;  macro = (2/3 + 2/3 + 0) / 3 = 4/9
    # micro: tp 2 fn 2 -> 4 / 6;  samples: 1, 0 (two missed), 1, 0 -> 0.5
    scores = f1_scores(PROBS, TARGETS, 0.75)
    assert scores == pytest.approx({"weighted": 2 / 3, "macro": 4 / 9, "micro": 2 / 3, "samples": 0.5})


def test_f1_hard_predictions_and_threshold_inclusive():
    pred = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([[1, 0], [1, 1]])
    # class 0 (support 2): tp 1 fn 1 -> 2/3; class 1 (support 1): tp 1 -> 1
    # weighted = (2*2/3 + 1*1) / 3 = 7/9;  macro = (2/3 + 1) / 2 = 5/6
    scores = f1_scores(pred, target, 1.0)  # a score equal to the threshold counts as predicted
    assert scores["weighted"] == pytest.approx(7 / 9)
    assert scores["macro"] == pytest.approx(5 / 6)
    # micro: tp 2 fn 1 -> 4/5; samples: 1, 2/(2+1) -> (1 + 2/3) / 2
    assert scores["micro"] == pytest.approx(0.8)
    assert scores["samples"] == pytest.approx(5 / 6)


def test_f1_nothing_true_nothing_predicted_is_zero():
    zeros = torch.zeros(3, 4)
    assert f1_scores(zeros, zeros, 0.5) == {"weighted": 0.0, "macro": 0.0, "micro": 0.0, "samples": 0.0}


def test_f1_shape_mismatch():
    with pytest.raises(ValueError):
        f1_scores(torch.zeros(3, 4), torch.zeros(3, 5), 0.5)


def test_best_threshold_picks_lowest_of_ties():
    target = torch.tensor([[1, 0], [0, 1]])
    probs = torch.tensor([[0.58, 0.32], [0.22, 0.7]])
    # perfect (every F1 = 1) for thresholds in (0.32, 0.58]: on the grid 0.35 .. 0.55, lowest 0.35
    threshold, scores = best_threshold(probs, target)
    assert threshold == pytest.approx(0.35)
    assert scores == pytest.approx({"weighted": 1.0, "macro": 1.0, "micro": 1.0, "samples": 1.0})
    assert best_threshold(probs, target, grid=[0.9, 0.5, 0.4], key="micro")[0] == 0.4


def test_best_threshold_matches_f1_scores():
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(200, 7, generator=gen)
    target = (torch.rand(200, 7, generator=gen) < probs).to(torch.uint8)
    for key in ("weighted", "macro", "micro", "samples"):
        threshold, scores = best_threshold(probs, target, key=key)
        assert scores == pytest.approx(f1_scores(probs, target, threshold))
        assert all(f1_scores(probs, target, t)[key] <= scores[key] + 1e-12 for t in DEFAULT_THRESHOLDS)


def test_best_threshold_bad_key_and_grid():
    with pytest.raises(ConfigError):
        best_threshold(PROBS, TARGETS, key="median")
    with pytest.raises(ConfigError):
        best_threshold(PROBS, TARGETS, grid=[])


def test_best_threshold_fast_at_mmimdb_dev_size():
    gen = torch.Generator().manual_seed(1)
    probs = torch.rand(2600, 23, generator=gen)
    target = (torch.rand(2600, 23, generator=gen) < 0.1).to(torch.uint8)
    start = time.perf_counter()
    best_threshold(probs, target)
    assert time.perf_counter() - start < 1.0


def test_at_least_one_label_predicts_each_samples_top_label():
    probs = torch.tensor([[0.2, 0.3, 0.1], [0.9, 0.1, 0.6]])
    targets = torch.tensor([[0, 1, 0], [1, 0, 0]])
    assert f1_scores(probs, targets, 0.5)["samples"] == pytest.approx((0 + 2 / 3) / 2)
    assert f1_scores(probs, targets, 0.5, at_least_one=True)["samples"] == pytest.approx((1 + 2 / 3) / 2)
    threshold, scores = best_threshold(probs, targets, key="samples", at_least_one=True)
    assert scores["samples"] == 1.0 and threshold > 0.6
