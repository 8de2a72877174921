"""Type hints for setting values that are more than their Python type: file paths, genotype references,
node maps. The recipe reads them to resolve relative paths and to say what a key expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Described:
    """What a value must be, in words, where its Python type alone would say too little in a message."""

    text: str


@dataclass(frozen=True)
class FileReference(Described):
    """A string naming a file. A recipe resolves it against the folder of the file that wrote it;
    `keywords`, and values that start with one of `prefixes`, are names rather than paths."""

    keywords: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def names_a_file(self, value: str) -> bool:
        return value not in self.keywords and not value.startswith(self.prefixes)


FilePath = Annotated[str, FileReference("a string (a file path)")]
GenotypeRef = Annotated[str, FileReference("a string (a genotype JSON path, 'baseline:NAME' or 'random')",
                                           keywords=("random",), prefixes=("baseline:",))]
NodeMap = Annotated[dict[str, str], Described(
    'a table of node names (genotype node = dataset node, e.g. {"image[2]" = "pix[0]"})')]
