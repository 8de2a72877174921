import math

import pytest
import torch

from ssnas.config.runtime import Runtime
from ssnas.config.stages import SearchConfig
from ssnas.config.views import ViewConfig
from ssnas.errors import ConfigError
from ssnas.reporting import InMemoryReporter
from ssnas.stages.runtime import cpu_has_bf16
from ssnas.stages.search import search

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_picks_what_is_there():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert Runtime(device="auto").torch_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
def test_asking_for_cuda_without_it_is_a_clear_error():
    with pytest.raises(ConfigError, match="run.device: 'cuda:0' asked for, but CUDA is not available here"):
        Runtime(device="cuda:0").torch_device()


def test_bad_device_names_the_field():
    with pytest.raises(ConfigError, match="run.device"):
        Runtime(device="tpu")


def test_bf16_autocast_only_where_native():
    context = Runtime(bf16=True).autocast(torch.device("cpu"))
    assert isinstance(context, torch.autocast) == cpu_has_bf16()
    assert not isinstance(Runtime(bf16=False).autocast(torch.device("cpu")), torch.autocast)


@pytest.mark.parametrize("bf16", [False, True])
def test_search_in_bf16_or_fp32_gives_finite_losses(tiny_features, tiny_space, bf16):
    reporter = InMemoryReporter()
    search(tiny_features, tiny_space, SearchConfig(min_steps=0, epochs=1, batch_size=32), ViewConfig(),
           Runtime(device="cpu", bf16=bf16), reporter)
    assert all(math.isfinite(v) for v in reporter.values("loss"))


@needs_cuda
@pytest.mark.parametrize("objective", ["ssl", "supervised"])
def test_search_on_cuda_with_bf16(tiny_features, tiny_space, objective):
    reporter = InMemoryReporter()
    result = search(tiny_features, tiny_space, SearchConfig(min_steps=0, objective=objective, epochs=1, batch_size=32),
                    ViewConfig(), Runtime(device="cuda", bf16=True), reporter)
    assert all(math.isfinite(v) for v in reporter.values("loss"))
    assert result.genotype.input_names == tiny_features.node_names
