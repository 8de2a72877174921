"""tag, rm, kill of a queued run, rerun bookkeeping and recipe show, on a registry built directly."""

from click.testing import CliRunner

from ssnas.cli import main
from ssnas.registry import Registry
from tests.e2e import RECIPES


def make_runs(folder, count=2, status="finished"):
    registry = Registry(folder / "registry.db")
    ids = []
    for i in range(count):
        run_id = registry.create_run(name=f"r{i}", stage="search", config={"search": {"epochs": 1}}, seed=i)
        registry.update_run(run_id, run_dir=str(folder / run_id))
        (folder / run_id).mkdir()
        (folder / run_id / "log.txt").write_text("hello\n")
        if status != "queued":
            registry.finish_run(run_id, status)
        ids.append(run_id)
    return registry, ids


def invoke(folder, *args, input=None):
    return CliRunner().invoke(main, ["--runs", str(folder), *args], input=input)


def test_tag_adds_and_removes(tmp_path):
    registry, [a, _] = make_runs(tmp_path)
    assert invoke(tmp_path, "tag", a[:6], "best", "paper").output.strip() == f"{a[:8]}: best, paper"
    assert registry.get_run(a)["tags"] == ["best", "paper"]
    invoke(tmp_path, "tag", a[:6], "paper", "--remove")
    assert registry.get_run(a)["tags"] == ["best"]


def test_rm_asks_first_and_deletes_rows_and_folder(tmp_path):
    registry, [a, b] = make_runs(tmp_path)
    refused = invoke(tmp_path, "rm", a[:6], input="n\n")
    assert refused.exit_code != 0 and "nothing deleted" in refused.output
    assert registry.get_run(a) and (tmp_path / a).exists()
    done = invoke(tmp_path, "rm", a[:6], input="y\n")
    assert done.exit_code == 0 and f"deleted {a[:8]}" in done.output
    assert not (tmp_path / a).exists() and [r["id"] for r in registry.runs()] == [b]


def test_rm_refuses_a_running_run(tmp_path):
    registry, [a] = make_runs(tmp_path, count=1, status="queued")
    import os

    registry.start_run(a, pid=os.getpid(), host="here", device="cpu")
    done = invoke(tmp_path, "rm", a, "--yes")
    assert done.exit_code != 0 and "still running" in done.output


def test_kill_of_a_queued_run_marks_it_killed(tmp_path):
    registry, [a] = make_runs(tmp_path, count=1, status="queued")
    assert f"{a[:8]} cancelled before it started" in invoke(tmp_path, "kill", a[:6]).output
    assert registry.get_run(a)["status"] == "killed"
    assert "already killed" in invoke(tmp_path, "kill", a[:6]).output


def test_resume_refuses_a_finished_run(tmp_path):
    _, [a] = make_runs(tmp_path, count=1)
    done = invoke(tmp_path, "resume", a[:6])
    assert done.exit_code == 2 and "only killed, failed, lost runs resume" in done.output


def test_rerun_needs_runs_or_failed_not_both(tmp_path):
    _, [a] = make_runs(tmp_path, count=1)
    assert invoke(tmp_path, "rerun").exit_code == 2
    assert invoke(tmp_path, "rerun", a, "--failed").exit_code == 2
    assert "nothing to rerun" in invoke(tmp_path, "rerun", "--failed").output


def test_unknown_run_is_one_line(tmp_path):
    make_runs(tmp_path)
    done = invoke(tmp_path, "kill", "zzzz")
    assert done.exit_code == 2 and done.output.strip() == "Error: no run matches 'zzzz'"


def test_recipe_show_resolves_extends_and_sweeps(tmp_path):
    done = invoke(tmp_path, "recipe", "show", str(RECIPES / "pipeline.toml"), "--set", "sweep.seed=[0, 1]")
    assert done.exit_code == 0, done.output
    assert 'stages = ["search", "pretrain", "finetune"]' in done.output and "epochs = 10" in done.output
    assert "# 2 chains, 6 runs queued by `ssnas run`" in done.output  # three stages per chain, nothing shared
    assert not (tmp_path / "registry.db").exists()  # showing a recipe creates nothing


def test_rerun_failed_chain_links_children_to_their_new_parents(tmp_path):
    from ssnas.recipe import load_recipe

    recipe = tmp_path / "p.toml"
    recipe.write_text('[run]\nname = "p"\nstage = "pipeline"\nstages = ["search", "pretrain"]\n'
                      '[data.synthetic]\ntrain = 64\ndev = 16\ntest = 16\n[search]\nepochs = 1\n')
    config = load_recipe(str(recipe)).to_dict()  # what a submission stores: a whole resolved recipe
    registry = Registry(tmp_path / "registry.db")
    parent = registry.create_run(name="p/search", stage="search", config=config)
    child = registry.create_run(name="p/pretrain", stage="pretrain", config=config, parent_id=parent)
    registry.finish_run(parent, "failed", error="boom")
    registry.finish_run(child, "failed", error="not started: parent did not finish")
    done = invoke(tmp_path, "rerun", "--failed", "--detach")
    assert done.exit_code == 0, done.output
    new = {r["name"]: r for r in registry.runs() if r["id"] not in (parent, child)}
    assert new["p/pretrain"]["parent_id"] == new["p/search"]["id"]
    assert f"rerun-of:{parent[:8]}" in registry.get_run(new["p/search"]["id"])["tags"]


def test_run_refuses_a_genotype_the_data_cannot_bind_before_any_run_exists(tmp_path, views_file):
    recipe = tmp_path / "bmnas.toml"
    recipe.write_text(f'[run]\nstage = "finetune"\ngenotype = "baseline:bmnas-mmimdb"\n'
                      f'[data]\ndataset = "features"\npath = "{views_file}"\n')
    registry, _ = make_runs(tmp_path, count=1)
    for args in (["run", str(recipe), "--detach"], ["recipe", "show", str(recipe)]):
        result = invoke(tmp_path, *args)
        assert result.exit_code != 0
        assert result.output.splitlines() == [
            f"Error: {recipe}: run.genotype: genotype bmnas-mmimdb reads input nodes image[2], text[0], which "
            f"{views_file} does not have (its nodes: pix[0], pix[1], fou[0], fou[1], zer[0], zer[1]); map them "
            'with run.genotype_nodes = {"image[2]" = "...", "text[0]" = "..."}']
    assert len(registry.runs()) == 1  # only the run made above
    mapped = invoke(tmp_path, "recipe", "show", str(recipe), "--set",
                    'run.genotype_nodes={"image[2]" = "pix[0]", "text[0]" = "fou[0]"}')
    assert mapped.exit_code == 0 and 'genotype_nodes = {"image[2]" = "pix[0]", "text[0]" = "fou[0]"}' in mapped.output


def test_detach_names_the_runs_folder_only_when_it_is_not_the_default(tmp_path, monkeypatch):
    from tests.e2e import tiny_recipe

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSNAS_RUNS", raising=False)
    recipe = str(tiny_recipe(tmp_path, epochs=1))
    here = CliRunner().invoke(main, ["run", recipe, "--detach", "--max-parallel", "1"])
    assert here.exit_code == 0, here.output
    assert "follow with: ssnas runs   (or ssnas tui" in here.output and "1 run(s) queued" in here.output
    there = CliRunner().invoke(main, ["--runs", str(tmp_path / "elsewhere"), "run", recipe, "--detach"])
    assert f"follow with: ssnas --runs {tmp_path / 'elsewhere'} runs" in there.output


def test_resume_of_a_queued_run_leaves_it_to_the_folders_scheduler(tmp_path):
    import os

    from ssnas.registry import this_host

    registry = Registry(tmp_path / "registry.db")
    parent = registry.create_run(name="p", stage="search", config={})
    registry.start_run(parent, pid=os.getpid(), host=this_host(), device="cpu")  # alive: the child waits
    child = registry.create_run(name="c", stage="pretrain", config={}, parent_id=parent)
    done = invoke(tmp_path, "resume", child[:6], "--detach")
    assert done.exit_code == 0 and f"{child[:8]} is queued: the folder's scheduler starts it" in done.output
    assert registry.get_run(child).status == "queued"
    registry.finish_run(parent, "killed")


def finished_search(folder):
    """A registry holding one finished tiny search (1 epoch) with the whole resolved recipe a submission stores."""
    from ssnas.recipe import load_recipe
    from tests.e2e import tiny_recipe

    recipe = load_recipe(tiny_recipe(folder, epochs=1))
    registry = Registry(folder / "registry.db")
    run_id = registry.create_run(name="tiny", stage="search", config=recipe.to_dict(), recipe_path=str(recipe.path),
                                 seed=0)
    registry.finish_run(run_id, "finished")
    return registry, run_id


def test_rerun_with_set_queues_the_run_with_its_config_changed(tmp_path):
    registry, original = finished_search(tmp_path)
    done = invoke(tmp_path, "rerun", original[:6], "--set", "search.epochs=3", "--set", "run.seed=7", "--detach")
    assert done.exit_code == 0, done.output
    assert "1 run(s) queued again with search.epochs=3, run.seed=7" in done.output
    [new] = [run for run in registry.runs(config=True) if run.id != original]
    assert new.config["search"]["epochs"] == 3 and new.config["run"]["seed"] == 7 and new.seed == 7
    assert new.name == "tiny" and new.stage == "search" and f"rerun-of:{original[:8]}" in new.tags
    assert registry.get_run(original).config["search"]["epochs"] == 1  # the stored run is as it was


def test_rerun_with_set_refuses_a_bad_override_before_queueing_anything(tmp_path):
    registry, original = finished_search(tmp_path)
    refusals = {
        "search.epocs=3": "--set search.epocs=3: unknown key search.epocs (did you mean search.epochs?)",
        "search.epochs=many": "--set search.epochs=many: ",
        "sweep.seed=[1, 2]": "--set sweep.seed=...: a rerun runs each run once, at its own stage",
        "run.stage=pretrain": "--set run.stage=...: a rerun runs each run once, at its own stage",
        # legal in a recipe, refused by preflight: a search needs 4 training rows
        "data.synthetic.train=2": "data.synthetic.train: 2 rows, but this run's stages need at least 4",
    }
    for override, message in refusals.items():
        done = invoke(tmp_path, "rerun", original, "--set", override, "--detach")
        assert done.exit_code == 2, (override, done.output)
        assert done.output.startswith("Error: ") and message in done.output and len(done.output.splitlines()) == 1
    assert [run.id for run in registry.runs()] == [original]
