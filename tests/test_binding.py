"""Genotypes bound to datasets by input-node names (ssnas.nas.binding, ssnas.data.nodes), and the worker's
last check before it trains one (ssnas.execution)."""

import dataclasses
import inspect
import json
import random

import h5py
import pytest

from ssnas.baselines import load_baseline
from ssnas.data.dataset_nodes import dataset_node_names
from ssnas.data.nodes import MMIMDB_PYRAMIDS, node_names
from ssnas.errors import DatasetError, GenotypeError
from ssnas.nas.binding import bind, bind_given, bind_reference, check_node_mapping
from ssnas.nas.genotype import Genotype, diff, random_genotype
from tests.conftest import TINY_DATA, VIEW_NODES

BMNAS = load_baseline("bmnas-mmimdb")
VIEWS = ", ".join(VIEW_NODES)
MAPPING = {"image[2]": "pix[0]", "text[0]": "fou[0]"}


# --------------------------------------------------------------------------------------------
# Binding.


def test_a_genotype_on_its_own_nodes_is_itself():
    assert bind(BMNAS, BMNAS.input_names) is BMNAS
    assert BMNAS.used_input_names == ("image[2]", "text[0]")


def test_nodes_are_matched_by_name_not_by_position():
    fewer = ("image[1]", "image[2]", "text[0]")
    bound = bind(BMNAS, fewer)
    assert bound.input_names == fewer and bound.describe() == BMNAS.describe()
    assert (bound.cells[0].inputs, bound.cells[1].inputs, bound.concat) == ((1, 2), (2, 3), (3, 4))
    assert diff(bound, BMNAS).similarity == 1.0 and bind(bound, BMNAS.input_names) == BMNAS


def test_a_genotype_that_reads_nodes_the_dataset_lacks_is_refused_with_the_names():
    with pytest.raises(GenotypeError) as refused:
        bind(BMNAS, VIEW_NODES, dataset="views.h5")
    assert str(refused.value) == (
        f"genotype bmnas-mmimdb reads input nodes image[2], text[0], which views.h5 does not have (its nodes: "
        f'{VIEWS}); map them with run.genotype_nodes = {{"image[2]" = "...", "text[0]" = "..."}}')
    with pytest.raises(GenotypeError, match=r"reads input nodes text\[0\], which"):
        bind(BMNAS, VIEW_NODES, {"image[2]": "pix[0]"})


def test_a_mapping_renames_and_reorders_to_the_dataset_and_cells_move_with_the_node_count():
    bound = bind(BMNAS, VIEW_NODES, {"image[2]": "fou[1]", "text[0]": "pix[0]"})
    assert bound.input_names == VIEW_NODES and bound.name == "bmnas-mmimdb"
    assert bound.describe() == ("cell0 = concat_fc(pix[0], fou[1])\ncell1 = linear_glu(pix[0], cell0)\n"
                                "head = concat(cell0, cell1)")
    assert (bound.cells[0].inputs, bound.cells[1].inputs, bound.concat) == ((3, 0), (0, 6), (6, 7))
    more = bind(BMNAS, (*VIEW_NODES, "extra[0]", "extra[1]"), MAPPING)
    assert (more.cells[1].inputs, more.concat) == ((2, 8), (8, 9))
    assert Genotype.from_json(bound.to_json()) == bound


def test_binding_through_a_mapping_and_back_gives_the_same_genotype():
    rng = random.Random(0)
    names = ("a[0]", "a[1]", "a[2]", "b[0]", "b[1]")
    for _ in range(30):
        genotype = random_genotype(names, 3, 2, ["sum", "attention", "concat_fc"], 2, rng)
        others = [f"v{i}[0]" for i in range(len(names) + rng.randrange(3))]
        rng.shuffle(others)
        there = dict(zip(names, others))
        bound = bind(genotype, sorted(others), there)
        assert bound.input_names == tuple(sorted(others))
        used = {there[n] for n in genotype.used_input_names}
        back = bind(bound, names, {v: k for k, v in there.items() if v in used})
        assert back == genotype


@pytest.mark.parametrize("mapping, problem", [
    ({"image[9]": "pix[0]"}, "'image[9]' is not an input node of genotype bmnas-mmimdb (its nodes: image[0], image[1], "
                             "image[2], image[3], text[0], text[1])"),
    ({"image[2]": "pix[7]"}, f"'pix[7]' is not an input node of views.h5 (its nodes: {VIEWS})"),
    ({"image[2]": "pix[0]", "text[0]": "pix[0]"}, "image[2] and text[0] both map onto pix[0]"),
])
def test_bad_mappings_are_refused(mapping, problem):
    with pytest.raises(GenotypeError) as refused:
        bind(BMNAS, VIEW_NODES, mapping, dataset="views.h5")
    assert str(refused.value) == problem
    with pytest.raises(GenotypeError) as keyed:
        bind_given(BMNAS, VIEW_NODES, mapping, dataset="views.h5")
    assert str(keyed.value) == f"run.genotype_nodes: {problem}"


def test_a_mapping_may_not_take_a_name_the_genotype_reads_unmapped():
    names = ("image[0]", "image[1]", "image[2]", "text[0]")
    with pytest.raises(GenotypeError, match=r"^image\[2\] maps onto text\[0\], which genotype bmnas-mmimdb also reads "
                                            r"as its own node text\[0\] \(map text\[0\] too\)$"):
        check_node_mapping(BMNAS, names, {"image[2]": "text[0]"})
    swapped = bind(BMNAS, names, {"image[2]": "text[0]", "text[0]": "image[2]"})
    assert swapped.describe().splitlines()[0] == "cell0 = concat_fc(image[2], text[0])"
    assert bind(BMNAS, names, {"image[3]": "image[0]"}).input_names == names  # neither is read


def test_a_reference_binds_through_the_runs_mapping_else_by_name_else_not_at_all():
    assert bind_reference(BMNAS, VIEW_NODES, MAPPING) == bind(BMNAS, VIEW_NODES, MAPPING)
    assert bind_reference(BMNAS, VIEW_NODES) is None
    assert bind_reference(BMNAS, BMNAS.input_names, {"in0": "image[0]"}) == BMNAS  # a mapping of another genotype


# --------------------------------------------------------------------------------------------
# Node names without loading the data.


def test_node_names_from_settings_agree_with_the_loaded_data(tiny_features, views_file):
    from ssnas.data.features import read_features

    assert dataset_node_names("synthetic", None, dataclasses.asdict(TINY_DATA)) == tiny_features.node_names
    assert dataset_node_names("features", views_file) == read_features(views_file).node_names == VIEW_NODES
    assert node_names([("image", 2), ("text", 1)]) == ("image[0]", "image[1]", "text[0]")


def test_mmimdb_node_names_are_its_encoders_levels():
    from ssnas.data.encoders import BMNAS_VGG_TAPS, TextMLPPyramid

    text_levels = len(inspect.signature(TextMLPPyramid).parameters["hidden"].default)
    assert MMIMDB_PYRAMIDS == (("image", len(BMNAS_VGG_TAPS)), ("text", text_levels))
    assert dataset_node_names("mmimdb", "any.h5") == BMNAS.input_names


def test_a_features_file_too_broken_to_name_its_nodes_is_one_line(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "bare.h5", "w") as f:
        f.attrs["format"] = "ssnas-features/1"
    with h5py.File(tmp_path / "gap.h5", "w") as f:
        f.attrs["modalities"] = json.dumps(["a", "b"])
        f.create_dataset("modalities/a/level_0", data=[[1.0]])
        f.create_dataset("modalities/b/level_1", data=[[1.0]])
    problems = {
        "nope.h5": "file not found", "text.h5": "not an HDF5 file",
        "bare.h5": "modalities: expected a root attribute holding a JSON list of names, got None",
        "gap.h5": "/modalities/b/level_0: missing",
    }
    for name, problem in problems.items():
        with pytest.raises(DatasetError) as refused:
            dataset_node_names("features", tmp_path / name)
        assert str(refused.value) == f"{tmp_path / name}: {problem}"


# --------------------------------------------------------------------------------------------
# The worker binds again, whatever the recipe check said (a genotype from a parent run, data changed).


@pytest.fixture
def views_recipe(views_file, tmp_path):
    """A finetune of BM-NAS's genotype on the views file, mapped; `bypassed` drops the mapping the way a
    stored config would carry a recipe checked before the data changed."""
    from ssnas.recipe import load_recipe, recipe_from_dict

    path = tmp_path / "r.toml"
    path.write_text(f'[run]\nstage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n'
                    f'genotype_nodes = {{ "image[2]" = "pix[0]", "text[0]" = "fou[0]" }}\n'
                    f'[data]\ndataset = "features"\npath = "{views_file}"\n')
    mapped = load_recipe(path)
    d = mapped.to_dict()
    d["run"]["genotype_nodes"] = None
    return mapped, recipe_from_dict(d, path=str(path))


def test_the_worker_binds_a_given_genotype_through_the_mapping(views_recipe, views_file):
    from ssnas.data.features import read_features
    from ssnas.execution import genotype_from

    mapped, _ = views_recipe
    features = read_features(views_file)
    genotype = genotype_from(mapped.run.genotype, mapped, features)
    assert genotype == bind(BMNAS, VIEW_NODES, MAPPING) and genotype.input_names == features.node_names
    drawn = genotype_from("random", mapped, features)
    assert drawn.input_names == VIEW_NODES  # a random genotype is drawn on the dataset's own names


def test_the_worker_refuses_a_genotype_that_does_not_fit(views_recipe, views_file, tmp_path):
    from ssnas.execution import GENOTYPE_FILE, run_stage

    _, bypassed = views_recipe
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(GenotypeError) as refused:
        run_stage("finetune", bypassed, run_dir, None, reporter=None)
    assert str(refused.value) == (
        f"{tmp_path / 'r.toml'}: run.genotype: genotype bmnas-mmimdb reads input nodes image[2], text[0], which "
        f'{views_file} does not have (its nodes: {VIEWS}); map them with run.genotype_nodes = '
        '{"image[2]" = "...", "text[0]" = "..."}')
    assert not (run_dir / GENOTYPE_FILE).exists()
    parent = tmp_path / "parent"
    parent.mkdir()
    BMNAS.save(parent / GENOTYPE_FILE)
    with pytest.raises(GenotypeError, match=rf"^{parent / GENOTYPE_FILE}: genotype bmnas-mmimdb reads input nodes"):
        run_stage("pretrain", bypassed, run_dir, parent, reporter=None)


def test_a_worker_run_with_a_genotype_that_does_not_fit_ends_failed_with_the_reason(views_recipe, tmp_path):
    from ssnas.registry import Registry
    from ssnas.worker import run_worker

    _, bypassed = views_recipe
    runs = tmp_path / "runs"
    with Registry(runs / "registry.db") as registry:
        run_id = registry.create_run(name="bmnas", stage="finetune", config=bypassed.to_dict(),
                                     recipe_path=bypassed.path, dataset="features")
        registry.update_run(run_id, run_dir=str(runs / run_id))
    assert run_worker(run_id, runs) == 1
    with Registry(runs / "registry.db", create=False) as registry:
        run = registry.get_run(run_id)
    assert run["status"] == "failed"
    assert run["error"].startswith(f"GenotypeError: {bypassed.path}: run.genotype: genotype bmnas-mmimdb reads "
                                   "input nodes image[2], text[0], which")
