from pathlib import Path

import pytest
import torch
from torch import nn

from ssnas.data.encoders import (
    BMNAS_VGG_TAPS,
    TextMLPPyramid,
    TransformerTextPyramid,
    VGG19Pyramid,
    encode_in_batches,
    vgg19_layer_names,
)
from ssnas.errors import DatasetError


@pytest.fixture(scope="module")
def vgg() -> VGG19Pyramid:
    torch.manual_seed(0)
    return VGG19Pyramid(None)


def test_bmnas_taps_point_at_relu_and_pool_modules() -> None:
    from torchvision.models import vgg19

    with torch.device("meta"):
        features = vgg19().features
    names = vgg19_layer_names()
    assert len(names) == len(features)
    indices = [names.index(tap) for tap in BMNAS_VGG_TAPS]
    assert indices == [20, 26, 33, 36]  # BM-NAS's GP_VGG taps the same modules
    assert [type(features[i]) for i in indices] == [nn.ReLU, nn.ReLU, nn.ReLU, nn.MaxPool2d]
    # relu4_1 follows the first 512-channel conv; relu4_4 the fourth conv of block 4.
    assert features[indices[0] - 1].out_channels == 512
    assert sum(isinstance(m, nn.Conv2d) for m in features[: indices[1]]) == 12


def test_vgg_levels_are_512_channel_maps(vgg: VGG19Pyramid) -> None:
    levels = vgg.encode(torch.rand(2, 3, 64, 40))
    assert [tuple(level.shape) for level in levels] == [
        (2, 512, 8, 5),
        (2, 512, 8, 5),
        (2, 512, 4, 2),
        (2, 512, 2, 1),
    ]
    assert len(vgg.features) == 37
    assert all(not p.requires_grad for p in vgg.parameters())


def test_vgg_runs_only_up_to_last_tap_and_pools_maps() -> None:
    enc = VGG19Pyramid(None, taps=("relu3_1", "relu2_2"), map_side=3)
    assert len(enc.features) == vgg19_layer_names().index("relu3_1") + 1
    levels = enc.encode(torch.rand(2, 3, 32, 32))
    assert [tuple(level.shape) for level in levels] == [(2, 128, 3, 3), (2, 256, 3, 3)]


def test_vgg_unknown_tap() -> None:
    with pytest.raises(DatasetError, match=r"taps: \['relu9_1'\]"):
        VGG19Pyramid(None, taps=("relu9_1",))


def test_encoders_stay_frozen_in_eval_mode(vgg: VGG19Pyramid) -> None:
    mlp = TextMLPPyramid()
    wrapper = nn.ModuleList([vgg, mlp])
    wrapper.train()
    assert not vgg.training and not mlp.training
    assert not any(m.training for m in mlp.modules())


def test_vgg_loads_a_torchvision_state_dict(tmp_path: Path) -> None:
    small = VGG19Pyramid(None, taps=("relu2_2",))  # small, with torchvision's key layout
    state = {f"features.{k}": v for k, v in small.features.state_dict().items()}
    state["features.10.weight"] = torch.zeros(256, 128, 3, 3)  # layers past the last tap are ignored
    state["classifier.0.weight"] = torch.zeros(3, 3)  # and so is the head
    torch.save(state, tmp_path / "vgg19.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    x = torch.rand(1, 3, 32, 32)
    for name in ("vgg19.pth", "wrapped.pth"):
        loaded = VGG19Pyramid(tmp_path / name, taps=("relu2_2",))
        for a, b in zip(small.encode(x), loaded.encode(x)):
            assert torch.equal(a, b)


def test_bad_weight_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"missing\.pth: vgg19 weights: file not found"):
        VGG19Pyramid(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(DatasetError, match=r"junk\.pth: vgg19 weights: cannot be read"):
        VGG19Pyramid(tmp_path / "junk.pth")
    torch.save({"op1.lin.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(DatasetError, match=r"other\.pth: features\.0\.weight: missing"):
        VGG19Pyramid(tmp_path / "other.pth")
    state = TextMLPPyramid().state_dict()
    state["op1.lin.weight"] = torch.zeros(7, 300)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(DatasetError, match=r"shape\.pth: op1\.lin\.weight: shape \(7, 300\), expected \(320, 300\)"):
        TextMLPPyramid(weights_path=tmp_path / "shape.pth")


def test_text_mlp_levels_and_bmnas_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mlp = TextMLPPyramid()
    x = torch.randn(5, 300)
    levels = mlp.encode(x)
    assert [tuple(level.shape) for level in levels] == [(5, 64), (5, 128)]
    # BM-NAS's MaxOut_MLP saved inside a model as text_net, with its classifier head.
    state = {f"text_net.{k}": v for k, v in mlp.state_dict().items()}
    state["text_net.hid2val.weight"] = torch.zeros(23, 128)
    state["image_net.vgg.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bmnas.pt")
    loaded = TextMLPPyramid(weights_path=tmp_path / "bmnas.pt")
    for a, b in zip(levels, loaded.encode(x)):
        assert torch.equal(a, b)
    assert sorted(k for k in mlp.state_dict() if k.endswith("weight")) == [
        "op1.lin.weight",
        "op2.0.weight",
        "op3.lin.weight",
    ]


def test_encode_in_batches_matches_one_batch() -> None:
    mlp = TextMLPPyramid(input_dim=10, hidden=(4, 6, 8))
    x = torch.randn(11, 10)
    seen = []
    levels = encode_in_batches(mlp, x, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 11), (8, 11), (11, 11)]
    for a, b in zip(levels, mlp.encode(x)):
        torch.testing.assert_close(a, b)
    assert [level.shape[1] for level in levels] == [4, 6, 8]
    with pytest.raises(DatasetError, match="no rows"):
        encode_in_batches(mlp, x[:0], batch_size=4)


# --- transformers text pyramid: a tiny random BERT and tokenizer saved locally -------------------

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "hero", "love", "story", "war", "space", "film"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=len(VOCAB),
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


TEXTS = ["a hero", "the love story of a space war film", "film"]


def test_transformer_levels(bert_dir: Path) -> None:
    enc = TransformerTextPyramid(bert_dir, layers=(-1, 1), max_length=16, positions=4)
    assert enc.layers == [1, 2]
    levels = enc.encode(TEXTS)
    assert [tuple(level.shape) for level in levels] == [(3, 32, 4), (3, 32, 4)]
    assert all(not p.requires_grad for p in enc.parameters())


def test_transformer_ignores_padding(bert_dir: Path) -> None:
    short = TransformerTextPyramid(bert_dir, layers=(-1,), max_length=12, positions=4)
    long = TransformerTextPyramid(bert_dir, layers=(-1,), max_length=32, positions=4)
    together = short.encode(TEXTS)[0]
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(together[i], long.encode([text])[0][0], atol=1e-5, rtol=1e-5)


def test_transformer_bad_paths_and_layers(bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope: text model: not a directory"):
        TransformerTextPyramid(tmp_path / "nope")
    with pytest.raises(DatasetError, match=rf"{tmp_path}: text model: cannot be loaded"):
        TransformerTextPyramid(tmp_path)
    with pytest.raises(DatasetError, match=r"layers: \[-4, -1\] must be distinct"):
        TransformerTextPyramid(bert_dir)  # the default -4 needs at least 3 layers
