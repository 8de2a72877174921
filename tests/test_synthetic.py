import pytest
import torch

from ssnas.config.data import SyntheticConfig
from ssnas.data.datasets import load_dataset
from ssnas.data.synthetic import make_synthetic, planted_recovery
from ssnas.errors import ConfigError, DatasetError
from tests.conftest import TINY_DATA


def test_same_seed_same_data_other_seed_other_data():
    a, b = make_synthetic(TINY_DATA), make_synthetic(TINY_DATA)
    c = make_synthetic(SyntheticConfig(**{**TINY_DATA.__dict__, "seed": 1}))
    assert all(torch.equal(x, y) for pa, pb in zip(a.levels, b.levels) for x, y in zip(pa, pb))
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.levels[0][0], c.levels[0][0])


def test_shapes_splits_and_labels_follow_the_config():
    config = SyntheticConfig(train=50, dev=20, test=30, image_levels=3, image_channels=5, image_side=3,
                             text_dims=(4, 7, 9), classes=6, planted_image=1, planted_text=2)
    data = make_synthetic(config)
    assert data.node_names == ("image[0]", "image[1]", "image[2]", "text[0]", "text[1]", "text[2]")
    assert [tuple(lv.shape) for lv in data.levels[0]] == [(100, 5, 3, 3)] * 3
    assert [tuple(lv.shape) for lv in data.levels[1]] == [(100, 4), (100, 7), (100, 9)]
    assert [data.splits[s].numel() for s in ("train", "dev", "test")] == [50, 20, 30]
    assert data.labels.shape == (100, 6) and set(data.labels.unique().tolist()) <= {0, 1}
    assert config.planted_nodes == ("image[1]", "text[2]")


def test_label_frequencies_spread_like_a_multilabel_benchmark():
    freq = make_synthetic(SyntheticConfig(train=4000, dev=500, test=500)).labels.float().mean(0)
    assert freq.min() == pytest.approx(0.05, abs=0.01) and freq.max() == pytest.approx(0.40, abs=0.01)


def _components(x: torch.Tensor, train: torch.Tensor, k: int = 10) -> torch.Tensor:
    x = x.double() - x[train].double().mean(0)
    x = x @ torch.linalg.svd(x[train], full_matrices=False).Vh[:k].T
    return (x / x[train].std(0)).float()


def _quadratic_probe(x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> float:
    """Test R^2 (summed over labels) of least squares on features and their pairwise products."""
    quad = torch.cat([x, (x[:, :, None] * x[:, None, :]).flatten(1), torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(quad[train], y[train], driver="gelsd").solution
    residual = ((quad[test] @ solution - y[test]) ** 2).sum()
    return float(1 - residual / ((y[test] - y[train].mean(0)) ** 2).sum())


def test_labels_need_the_planted_levels_of_both_modalities():
    """The planted architecture: fusing image[2] with text[0] explains the labels; other pairs do not."""
    data = make_synthetic(SyntheticConfig(train=4000, dev=10, test=1500))
    train, test = data.splits["train"], data.splits["test"]
    y = data.labels.float()
    levels = dict(zip(data.node_names, (_components(lv.flatten(1), train) for pyramid in data.levels for lv in pyramid)))

    def score(*names: str) -> float:
        return _quadratic_probe(torch.cat([levels[n] for n in names], dim=1), y, train, test)

    planted = score("image[2]", "text[0]")
    assert planted > score("image[2]") + 0.1  # one modality alone is not enough
    assert planted > score("text[0]") + 0.1
    for other in (("image[1]", "text[1]"), ("image[0]", "text[0]"), ("image[2]", "text[1]"), ("image[2]", "image[3]")):
        assert planted > score(*other) + 0.1, other


def test_planted_recovery_is_a_jaccard_overlap():
    planted = ("image[2]", "text[0]")
    assert planted_recovery({"image[2]", "text[0]"}, planted) == 1.0
    assert planted_recovery({"image[2]", "text[1]"}, planted) == pytest.approx(1 / 3)
    assert planted_recovery({"image[0]", "image[1]"}, planted) == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [({"planted_image": 9}, "data.synthetic.planted_image"), ({"shared_dim": 3}, "data.synthetic.shared_dim"),
     ({"train": 0}, "data.synthetic.train"), ({"noise": -1.0}, "data.synthetic.noise"),
     ({"colour": 1}, "data.synthetic.colour: unknown setting")],
)
def test_bad_synthetic_settings_name_the_field(options, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset("synthetic", options=options)


def test_dataset_kinds_by_name(tmp_path):
    from ssnas.data.features import write_features

    data = load_dataset("synthetic", options={"train": 20, "dev": 5, "test": 5})
    path = write_features(data, tmp_path / "cache.h5", dtype="float32")
    again = load_dataset("features", path)
    assert again.node_names == data.node_names and torch.equal(again.labels.float(), data.labels.float())
    with pytest.raises(ConfigError, match="data.dataset: 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="data.path"):
        load_dataset("features")
    with pytest.raises(DatasetError, match="missing.h5"):
        load_dataset("features", tmp_path / "missing.h5")
