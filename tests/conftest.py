import pytest

from ssnas.config.data import SyntheticConfig
from ssnas.data.synthetic import make_synthetic
from ssnas.nas.space import SpaceConfig


@pytest.fixture(autouse=True)
def no_scheduler_left_behind(request):
    """Kill the runs-folder schedulers (and their workers) a test started under its tmp_path: they would
    otherwise linger a few seconds after it, or run its workers on."""
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if folder is not None:
        from tests.e2e import stop_schedulers

        stop_schedulers(folder)


TINY_DATA = SyntheticConfig(train=192, dev=64, test=64, image_channels=8, image_side=2, text_dims=(6, 10), classes=5)
TINY_SPACE = SpaceConfig(cells=2, steps=1, channels=8, positions=4, cell_multiplier=2, dropout=0.1)


@pytest.fixture(scope="session")
def tiny_features():
    """A small synthetic dataset: 2x2 maps, so L = 4 positions."""
    return make_synthetic(TINY_DATA)


@pytest.fixture
def tiny_space():
    return TINY_SPACE


VIEW_NODES = ("pix[0]", "pix[1]", "fou[0]", "fou[1]", "zer[0]", "zer[1]")


@pytest.fixture(scope="session")
def views_file(tmp_path_factory):
    """A tiny labeled features file of six views named like no MM-IMDB node (VIEW_NODES): as many input
    nodes as BM-NAS's MM-IMDB genotype has, which is what once let it run there by position."""
    import torch

    from ssnas.data.features import write_features
    from ssnas.data.pyramids import FeatureSet

    g = torch.Generator().manual_seed(0)
    n = 48
    levels = [[torch.randn(n, 4, generator=g), torch.randn(n, 6, 4, generator=g)] for _ in range(3)]
    order = torch.randperm(n, generator=g)
    features = FeatureSet(("pix", "fou", "zer"), levels, {"train": order[:32], "dev": order[32:40], "test": order[40:]},
                          labels=(torch.rand(n, 3, generator=g) < 0.4).float(), label_names=("a", "b", "c"))
    return write_features(features, tmp_path_factory.mktemp("views") / "views.h5", dtype="float32")
