"""Runs written into an MLflow tracking store through MLflow's own client, for its UI and its tools.

Each run becomes one MLflow run in one experiment: params are its resolved recipe flattened to dotted
keys, metrics every series it logged (`SPLIT/KEY`, with its steps and wall times), tags what ssnas
knows about it (`ssnas.*`), artifacts its genotype, results.json and log.txt. A run exported again
replaces its earlier export (which MLflow keeps as deleted until `mlflow gc`), so that exporting is
repeatable. A folder becomes a file store (the `mlruns` layout): MLflow 3 has put that backend in
maintenance mode and opens it only with MLFLOW_ALLOW_FILE_STORE=true, which is set while writing.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssnas.errors import SsnasError
from ssnas.run_record import Run
from ssnas.runs.format import flatten
from ssnas.runs.lookup import run_folder, run_genotype

if TYPE_CHECKING:
    from ssnas.registry import Registry

EXTRA = "--mlflow needs MLflow: pip install 'ssnas[mlflow]'"
EXPERIMENT = "ssnas"
RUN_TAG = "ssnas.run_id"  # how an earlier export of a run is found again
STATUS = {"queued": "SCHEDULED", "running": "RUNNING", "finished": "FINISHED", "failed": "FAILED",
          "killed": "KILLED", "lost": "FAILED"}
ARTIFACTS = ("results.json", "log.txt")  # copied from the run folder; genotype.json is looked up (run_genotype)
BATCH = {"metrics": 1000, "params": 100, "tags": 100}  # what one MLflow log_batch call takes
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # `file:...`, `sqlite:///...`, `http://...`


def export_runs(registry: Registry, runs_dir: Path, runs: Sequence[Run], target: str,
                experiment: str = EXPERIMENT) -> list[str]:
    """Write `runs` into the MLflow store at `target` (a folder, or a tracking URI); one line per run."""
    if not runs:
        return ["no runs to export"]
    uri = tracking_uri(target)
    mlflow = _mlflow()
    with _file_store_allowed():
        try:
            client = mlflow.tracking.MlflowClient(tracking_uri=uri)
            experiment_id = _experiment(client, experiment)
            earlier = _exported(client, experiment_id)
            lines = []
            for run in runs:
                for old in earlier.get(run.id, ()):
                    client.delete_run(old)
                mlflow_id = _write_run(client, experiment_id, registry, runs_dir, run)
                again = " (replaces its earlier export)" if run.id in earlier else ""
                lines.append(f"{run.short_id} {run.name} -> mlflow run {mlflow_id}{again}")
        except mlflow.exceptions.MlflowException as error:
            raise SsnasError(f"--mlflow: {uri}: {str(error).splitlines()[0]}") from None
    lines.append(f"{len(runs)} run(s) in experiment {experiment!r} of {uri}")
    return lines


def tracking_uri(target: str) -> str:
    """A folder as a `file:` URI (refused when it holds files but no MLflow store); a URI as it is."""
    if _URI.match(target) and not Path(target).exists():
        return target
    folder = Path(target).resolve()
    if folder.exists() and not folder.is_dir():
        raise SsnasError(f"--mlflow: {target}: not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not any(folder.glob("*/meta.yaml")):
        raise SsnasError(f"--mlflow: {target}: holds files but no MLflow store; give a new or empty folder")
    return folder.as_uri()


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _mlflow() -> Any:
    """The mlflow package with the parts used here, or the extra to install. Imported by name: it is an
    optional extra, and type checks must pass with it installed or not."""
    try:
        for part in ("entities", "exceptions", "tracking"):
            importlib.import_module(f"mlflow.{part}")
    except ImportError:
        raise SsnasError(EXTRA) from None
    return sys.modules["mlflow"]


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _exported(client: Any, experiment_id: str) -> dict[str, list[str]]:
    """ssnas run id -> the MLflow runs an earlier export made of it."""
    exported: dict[str, list[str]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for found in page:
            run_id = found.data.tags.get(RUN_TAG)
            if run_id:
                exported.setdefault(run_id, []).append(found.info.run_id)
        token = page.token
        if not token:
            return exported


def _write_run(client: Any, experiment_id: str, registry: Registry, runs_dir: Path, run: Run) -> str:
    entities = sys.modules["mlflow.entities"]
    start = run.started_at or run.created_at
    created = client.create_run(experiment_id, start_time=_ms(start), run_name=run.name)
    mlflow_id = created.info.run_id
    params = [entities.Param(key, _param_text(value)) for key, value in flatten(run.config or {}).items()]
    tags = [entities.RunTag(key, value) for key, value in run_tags(run).items()]
    metrics = [entities.Metric(_metric_key(row), row["value"], _ms(row["wall_time"] or start), row["step"] or 0)
               for row in registry.metrics(run.id)]
    for kind, logged in (("params", params), ("tags", tags), ("metrics", metrics)):
        size = BATCH[kind]
        for first in range(0, len(logged), size):
            client.log_batch(mlflow_id, **{kind: logged[first:first + size]})
    _log_artifacts(client, mlflow_id, registry, runs_dir, run)
    if run.terminal:
        client.set_terminated(mlflow_id, status=STATUS[run.status], end_time=_ms(run.ended_at or start))
    elif run.status == "queued":
        client.update_run(mlflow_id, status=STATUS["queued"])
    return mlflow_id


def run_tags(run: Run) -> dict[str, str]:
    """What ssnas knows about a run beyond its recipe and metrics, as MLflow tags (empty ones left out)."""
    tags = {RUN_TAG: run.id, "ssnas.status": run.status, "ssnas.stage": run.stage, "ssnas.group": run.group_id,
            "ssnas.parent": run.parent_id, "ssnas.tags": ",".join(run.tags), "ssnas.error": run.error,
            "mlflow.source.git.commit": run.git_commit}
    return {key: value for key, value in tags.items() if value}


def _log_artifacts(client: Any, mlflow_id: str, registry: Registry, runs_dir: Path, run: Run) -> None:
    folder = run_folder(runs_dir, run)
    for name in ARTIFACTS:
        if (folder / name).is_file():
            client.log_artifact(mlflow_id, str(folder / name))
    found = run_genotype(registry, runs_dir, run)
    if found.genotype is not None:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "genotype.json"
            found.genotype.save(path)
            client.log_artifact(mlflow_id, str(path))


def _metric_key(row: dict) -> str:
    return f"{row['split']}/{row['key']}" if row["split"] else row["key"]


def _param_text(value: Any) -> str:
    """A recipe value as MLflow keeps params, text: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
