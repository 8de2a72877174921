import pytest

from ssnas.data.synthetic import SyntheticConfig, make_synthetic
from ssnas.nas.space import SpaceConfig

TINY_DATA = SyntheticConfig(train=192, dev=64, test=64, image_channels=8, image_side=2, text_dims=(6, 10), classes=5)
TINY_SPACE = SpaceConfig(cells=2, steps=1, channels=8, positions=4, cell_multiplier=2, dropout=0.1)


@pytest.fixture(scope="session")
def tiny_features():
    """A small synthetic dataset: 2x2 maps, so L = 4 positions."""
    return make_synthetic(TINY_DATA)


@pytest.fixture
def tiny_space():
    return TINY_SPACE
