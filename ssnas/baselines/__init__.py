"""Published architectures bundled as genotype JSON, to compare searches against.

Each `<name>.json` here is a canonical genotype with `name` and `source` keys saying where it
comes from; files are read through importlib.resources so that they work from an installed wheel.
"""

from __future__ import annotations

from importlib import resources

from ssnas.errors import GenotypeError
from ssnas.nas.genotype import Genotype


def baseline_names() -> list[str]:
    """Names of the bundled baselines, sorted."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def load_baseline(name: str) -> Genotype:
    """The bundled genotype called `name`; an unknown name lists the known ones."""
    known = baseline_names()
    if name not in known:
        raise GenotypeError(f"unknown baseline {name!r} (known: {', '.join(known)})")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return Genotype.from_json(text, where=f"baseline {name}.json")
