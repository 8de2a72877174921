"""Runs as tables (`ssnas runs --columns/--format`), into pandas and MLflow, `compare --json`, and RUN completion.

On the registry of tests/test_cli_inspect.py: A an SSL search (finished, tagged `paper`), B a supervised
search (failed), C a finetune child of A (dev and test F1s), D a running search whose worker is gone.
"""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

from ssnas.cli import main
from ssnas.registry import Registry
from ssnas.runs import table as run_table
from tests.test_cli_inspect import A, B, C, D, T0, invoke, runs_dir, utc  # noqa: F401  (fixtures)

COLUMNS = "id,name,seed,best_f1,test_f1,search.arch_lr,data.label_ratio,metric.dev.f1_weighted,tags,created_at"


def ok(result):
    assert result.exit_code == 0, result.output
    return result.stdout


# -- --columns


def test_columns_as_json_are_raw_values(runs_dir):
    rows = json.loads(ok(invoke(runs_dir, "runs", "--json", "--columns", COLUMNS, "--sort", "created_at")))
    assert [list(row) for row in rows] == [COLUMNS.split(",")] * 4
    assert rows[0] == {"id": A, "name": "ssl_search", "seed": 0, "best_f1": None, "test_f1": None,
                       "search.arch_lr": 0.0003, "data.label_ratio": 0.1, "metric.dev.f1_weighted": None,
                       "tags": ["paper"], "created_at": T0}
    assert rows[2]["metric.dev.f1_weighted"] == 0.52  # the last logged, as --where reads it; best_f1 is the max
    assert rows[2]["best_f1"] == 0.55 and rows[2]["test_f1"] == 0.512


def test_columns_as_csv_and_table(runs_dir):
    text = ok(invoke(runs_dir, "runs", "--csv", "--columns", COLUMNS, "--where", "stage = 'finetune' OR tag = 'paper'"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == [C, A]
    assert rows[0]["metric.dev.f1_weighted"] == "0.52" and rows[1]["metric.dev.f1_weighted"] == ""
    assert rows[1]["tags"] == "paper" and rows[1]["created_at"] == str(T0) and rows[1]["search.arch_lr"] == "0.0003"
    lines = ok(invoke(runs_dir, "runs", "--columns", "id,name,best_f1,search.epochs,created_at,tags")).splitlines()
    assert lines[0].split() == ["id", "name", "best_f1", "search.epochs", "created_at", "tags"]
    assert lines[2].split() == ["cccc3333", "ssl_search/finetune", "0.55", "3", "2023-11-14", "22:15", "-"]
    assert lines[4].split() == ["aaaa1111", "ssl_search", "-", "3", "2023-11-14", "22:13", "paper"]


def test_a_column_shows_what_a_filter_on_it_compares(runs_dir):
    """Every value --columns prints for a field selects its run when --where asks for exactly that value."""
    fields = ["label_ratio", "seed", "status", "best_f1", "latest_loss", "search.objective", "space.primitives.1",
              "metric.dev.f1_weighted", "metric.f1_weighted", "metric.train.loss", "children"]
    rows = json.loads(ok(invoke(runs_dir, "runs", "--json", "--columns", ",".join(["id", *fields]))))
    for row in rows:
        for field in fields:
            value = row[field]
            test = f"{field} IS NULL" if value is None else f"{field} = {json.dumps(value)}".replace('"', "'")
            selected = json.loads(ok(invoke(runs_dir, "runs", "--json", "--where", test, "--columns", "id")))
            assert row["id"] in [r["id"] for r in selected], test


@pytest.mark.parametrize(("columns", "message"), [
    ("id,best_f", "Error: --columns: unknown field 'best_f', did you mean 'best_f1'? (run columns: id, name,"),
    ("id,elapsed", "Error: --columns: unknown field 'elapsed', did you mean 'elapsed_s'? (run columns:"),
    ("nmae", "Error: --columns: unknown field 'nmae', did you mean 'name'? (run columns:"),
    ("tag", "Error: --columns: 'tag' is a filter; the column of a run's tags is 'tags'"),
    ("id,,name", "Error: --columns: an empty field name in 'id,,name'"),
    ("id,name,id", "Error: --columns: 'id' is named twice"),
])
def test_an_unknown_column_is_one_line_with_a_suggestion(runs_dir, tmp_path, columns, message):
    for folder in (runs_dir, tmp_path / "no-registry"):
        result = invoke(folder, "runs", "--columns", columns)
        assert result.exit_code == 2
        assert len(result.output.splitlines()) == 1 and result.output.startswith(message), result.output


def test_a_config_path_or_metric_no_run_has_is_a_warning_with_a_suggestion(runs_dir):
    result = invoke(runs_dir, "runs", "--csv", "--columns", "id,serch.epochs,metric.dev.f1_wieghted,search.epochs")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warning: --columns: no run listed has a value for 'serch.epochs', did you mean 'search.epochs'?",
        "warning: --columns: no run listed has a value for 'metric.dev.f1_wieghted', "
        "did you mean 'metric.dev.f1_weighted'?",
    ]
    assert [row["serch.epochs"] for row in csv.DictReader(io.StringIO(result.stdout))] == [""] * 4


def test_json_has_every_field_with_the_config(runs_dir):
    rows = json.loads(ok(invoke(runs_dir, "runs", "--json")))
    assert rows[3]["id"] == A and rows[3]["config"]["search"] == {
        "objective": "ssl", "epochs": 3, "lr": 0.001, "arch_lr": 0.0003, "temperature": 0.2}
    assert set(rows[3]) >= {"config", "versions", "tags", "revision", "worked_seconds", "heartbeat_at", "children",
                            "elapsed_s", "latest_loss", "best_f1", "test_f1", "run_dir", "recipe_path"}


def test_default_csv_is_unchanged_by_the_column_machinery(runs_dir):
    lines = ok(invoke(runs_dir, "runs", "--format", "csv", "--where", "label_ratio < 0.05")).splitlines()
    assert lines[0] == ",".join(run_table.DEFAULT_COLUMNS)
    assert lines[1].startswith(f"{B},supervised_search,search,supervised,synthetic,0.01,1,failed,0.4,83.0,0.75,,,"
                               f"{T0 + 60},{T0 + 65},{T0 + 148},g0123456789a,,cuda:0,")
    assert lines[1].endswith(",,RuntimeError: CUDA out of memory")


@pytest.mark.parametrize(("args", "message"), [
    (["--json", "--csv"], "choose one output format (asked for json and csv)"),
    (["--csv", "--format", "parquet"], "choose one output format (asked for csv and parquet)"),
])
def test_one_output_format(runs_dir, args, message):
    result = invoke(runs_dir, "runs", *args)
    assert result.exit_code == 2 and message in result.output
    assert ok(invoke(runs_dir, "runs", "--json", "--format", "json", "--columns", "id")).startswith("[")


def test_output_file_and_the_limit_note(runs_dir, tmp_path):
    target = tmp_path / "runs.json"
    result = invoke(runs_dir, "runs", "--format", "json", "--columns", "id", "--limit", "2", "--output", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == "(the first 2 shown; --limit 0 lists all)\n"  # programs read a well-formed file
    assert [row["id"] for row in json.loads(target.read_text())] == [D, C]


def test_parquet_on_a_terminal_asks_for_a_file(runs_dir):
    """Binary on a terminal would garble it: refused unless --output names a file or stdout is a pipe."""
    leader, follower = os.openpty()
    argv = ["--runs", str(runs_dir), "runs", "--format", "parquet"]
    done = subprocess.run([sys.executable, "-c", "from ssnas.cli import main; main()", *argv],
                          stdout=follower, stderr=subprocess.PIPE, text=True)
    os.close(follower)
    os.close(leader)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == "Error: --format parquet writes binary: give --output FILE, or pipe it"


def cli_without(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`ssnas ARGV` in a fresh interpreter where importing `module` fails, as where its extra is not installed."""
    code = f"import sys; sys.modules[{module!r}] = None; from ssnas.cli import main; main({argv!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_parquet_without_pyarrow_names_the_extra(runs_dir, tmp_path):
    done = cli_without("pyarrow", ["--runs", str(runs_dir), "runs", "--format", "parquet", "-o", str(tmp_path / "x")])
    assert done.returncode == 2
    assert done.stderr == "Error: --format parquet needs pyarrow: pip install 'ssnas[parquet]'\n"


# -- Parquet and pandas


def test_parquet_round_trips_into_pandas_with_its_types(runs_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    target = tmp_path / "runs.parquet"
    columns = "id,seed,progress,best_f1,children,created_at,ended_at,tags,search.epochs,search.lr,run.bf16," \
              "space.primitives,metric.test.f1_weighted,status"
    ok(invoke(runs_dir, "runs", "--format", "parquet", "--columns", columns, "-o", str(target), "--sort", "created_at"))
    frame = pd.read_parquet(target)
    assert list(frame.columns) == columns.split(",")
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert {name: dtypes[name] for name in ("seed", "progress", "best_f1", "children", "search.epochs", "search.lr",
                                            "run.bf16", "metric.test.f1_weighted")} == {
        "seed": "int64", "progress": "float64", "best_f1": "float64", "children": "int64", "search.epochs": "int64",
        "search.lr": "float64", "run.bf16": "bool", "metric.test.f1_weighted": "float64"}
    for name in ("id", "status", "space.primitives"):
        assert pd.api.types.is_string_dtype(frame[name]), name
    assert isinstance(frame["created_at"].dtype, pd.DatetimeTZDtype) and str(frame["created_at"].dtype.tz) == "UTC"
    assert frame["created_at"][0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert frame["ended_at"].isna().tolist() == [False, False, False, True]  # D still running
    assert list(frame["id"]) == [A, B, C, D] and list(frame["seed"]) == [0, 1, 0, 2]
    assert list(frame["children"]) == [1, 0, 0, 0] and frame["best_f1"][2] == 0.55
    assert list(frame["tags"][0]) == ["paper"] and list(frame["tags"][1]) == []
    assert json.loads(frame["space.primitives"][0])[0] == "zero"


def test_parquet_of_no_runs_has_the_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    result = invoke(tmp_path / "nothing", "runs", "--format", "parquet", "--columns", "id,best_f1,search.lr")
    frame = pd.read_parquet(io.BytesIO(result.stdout_bytes))
    assert list(frame.columns) == ["id", "best_f1", "search.lr"] and len(frame) == 0
    assert str(frame["best_f1"].dtype) == "float64"


# -- compare --json


def test_compare_json_has_raw_values(runs_dir):
    out = json.loads(ok(invoke(runs_dir, "compare", "aaaa1", "aaaa2", "ccc", "--json")))
    assert [run["id"] for run in out["runs"]] == [A, B, C]
    assert [run["label"] for run in out["runs"]] == ["aaaa1111", "aaaa2222", "cccc3333"]
    first, failed, finetune = out["runs"]
    assert finetune["test"] == {"f1_weighted": 0.512, "f1_macro": 0.4, "f1_micro": 0.6, "f1_samples": 0.58,
                                "threshold": 0.35}
    assert finetune["best_f1"] == 0.55 and finetune["elapsed_s"] == 3725 and first["test"] == {}
    assert first["genotype_similarity"] == 1.0 and failed["genotype_similarity"] == pytest.approx(11 / 12)
    assert failed["status"] == "failed" and failed["genotype_error"] is None
    assert out["config_differs"] == ["run.name", "run.stage", "run.seed", "data.label_ratio", "search.objective"]
    assert failed["config"] == {"run.name": "supervised_search", "run.stage": "search", "run.seed": 1,
                                "data.label_ratio": 0.01, "search.objective": "supervised"}


# -- MLflow


def test_export_to_mlflow_writes_every_param_metric_tag_and_artifact(runs_dir, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from ssnas.runs.format import flatten

    store = tmp_path / "mlruns"
    result = invoke(runs_dir, "export", "--mlflow", str(store), "aaaa1", "ccc")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("aaaa1111 ssl_search -> mlflow run ")
    assert lines[-1] == f"2 run(s) in experiment 'ssnas' of {store.resolve().as_uri()}"
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 opens a file store only when asked to
    try:
        client = MlflowClient(tracking_uri=store.resolve().as_uri())
        experiment = client.get_experiment_by_name("ssnas")
        found = {run.data.tags["ssnas.run_id"]: run for run in client.search_runs([experiment.experiment_id])}
        assert set(found) == {A, C}
        with Registry(runs_dir / "registry.db", readonly=True) as registry:
            for run_id, mlflow_run in found.items():
                ours = registry.get_run(run_id)
                assert mlflow_run.data.params == {key: value if isinstance(value, str) else json.dumps(value)
                                                  for key, value in flatten(ours.config).items()}
                logged = registry.metrics(run_id)
                for key in {(row["split"], row["key"]) for row in logged}:
                    history = client.get_metric_history(mlflow_run.info.run_id, f"{key[0]}/{key[1]}")
                    expected = [(row["step"] or 0, row["value"], round(row["wall_time"] * 1000)) for row in logged
                                if (row["split"], row["key"]) == key]
                    assert sorted((m.step, m.value, m.timestamp) for m in history) == sorted(expected)
                assert mlflow_run.info.run_name == ours.name and mlflow_run.info.status == "FINISHED"
                assert mlflow_run.info.start_time == round(ours.started_at * 1000)
                assert mlflow_run.info.end_time == round(ours.ended_at * 1000)
        a, c = found[A], found[C]
        assert {k: v for k, v in a.data.tags.items() if k.startswith("ssnas.")} == {
            "ssnas.run_id": A, "ssnas.status": "finished", "ssnas.stage": "search", "ssnas.group": "g0123456789a",
            "ssnas.tags": "paper"}
        assert c.data.tags["ssnas.parent"] == A and c.data.tags["mlflow.source.git.commit"] == "abc1234"
        assert [f.path for f in client.list_artifacts(a.info.run_id)] == ["genotype.json"]
        again = invoke(runs_dir, "export", "--mlflow", str(store), "--where", "stage = 'finetune'")
        assert again.exit_code == 0 and "(replaces its earlier export)" in again.stdout
        active = client.search_runs([experiment.experiment_id])
        assert sorted(run.data.tags["ssnas.run_id"] for run in active) == [A, C]
    finally:
        del os.environ["MLFLOW_ALLOW_FILE_STORE"]


def test_export_to_mlflow_without_mlflow_names_the_extra(runs_dir, tmp_path):
    done = cli_without("mlflow", ["--runs", str(runs_dir), "export", "--mlflow", str(tmp_path / "m"), "ccc"])
    assert done.returncode == 2
    assert done.stderr == "Error: --mlflow needs MLflow: pip install 'ssnas[mlflow]'\n"
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["export"], "a folder export takes one RUN (--mlflow takes several)"),
    (["export", "ccc", "--where", "seed = 1"], "--where, --group and --experiment choose what --mlflow writes"),
    (["export", "--mlflow", "m", "ccc", "--to", "x"], "--to and --force are for a folder export, not --mlflow"),
    (["export", "--mlflow", "m", "ccc", "--group", "g"], "name runs or select them with --where/--group, not both"),
])
def test_export_option_mistakes(runs_dir, args, message):
    result = invoke(runs_dir, *args)
    assert result.exit_code == 2 and message in result.output


def test_export_to_mlflow_refuses_a_folder_of_other_files(runs_dir, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    result = invoke(runs_dir, "export", "--mlflow", str(tmp_path / "notes"), "ccc")
    assert result.exit_code == 2
    assert result.output == f"Error: --mlflow: {tmp_path / 'notes'}: holds files but no MLflow store; " \
                            "give a new or empty folder\n"


# -- shell completion


def completions(runs_dir, args, incomplete):
    complete = ShellComplete(main, {}, "ssnas", "_SSNAS_COMPLETE")
    return [(item.value, item.help) for item in complete.get_completions(["--runs", str(runs_dir), *args], incomplete)]


@pytest.mark.parametrize("command", [["show"], ["metrics"], ["arch"], ["diff", "ccc"], ["compare", "ccc"],
                                     ["export"], ["kill"], ["tag"], ["rm"]])
def test_run_arguments_complete_to_run_ids(runs_dir, command):
    assert completions(runs_dir, command, "aaaa") == [(B, "supervised_search"), (A, "ssl_search")]


def test_completion_by_name_and_when_nothing_fits(runs_dir, tmp_path):
    assert completions(runs_dir, ["show"], "") == [(D, "lost_search"), (C, "ssl_search/finetune"),
                                                  (B, "supervised_search"), (A, "ssl_search")]
    assert completions(runs_dir, ["show"], "ssl_search/") == [(C, "ssl_search/finetune")]  # ids by name
    assert completions(runs_dir, ["show"], "zz") == []
    assert completions(runs_dir, ["show"], "%") == []  # a LIKE wildcard is only a character
    assert completions(tmp_path / "none", ["show"], "a") == []


def test_bash_completion_through_the_environment(runs_dir, tmp_path):
    env = {**os.environ, "_SSNAS_COMPLETE": "bash_complete", "COMP_CWORD": "4"}
    code = "from ssnas.cli import main; main(prog_name='ssnas')"
    for folder, expected in ((runs_dir, f"plain,{C}\n"), (tmp_path / "none", "\n")):  # click ends with a newline
        env["COMP_WORDS"] = f"ssnas --runs {folder} show cc"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")
    assert "_ssnas_completion" in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                 env={**env, "_SSNAS_COMPLETE": "bash_source"}).stdout
