"""When two stage runs are the same run: the stage key (docs/engine.md, "Shared stages").

A stage run's result is a function of what it and the runs before it in its chain read. Its *key*
is a digest of exactly that: its stage, the resolved config less what it provably does not read,
and its parent's key. Two runs with one key compute the same thing, so a submission queues one and
links every chain that needs it to it (`ssnas.submit`), and `ssnas run --reuse` links to an earlier
finished run with the key instead of queueing one.

What a stage before fine-tuning does not read, and so leaves out of its key:
- `data.label_ratio`: a self-supervised search and a pretraining are handed data whose labels raise
  when read (`FeatureSet.without_labels`); the labeled subset is drawn from its own seeded
  generator, and only by the stages that read labels, so no random state depends on r;
- the sections of other stages (`[finetune]` always; a pretraining reads no `[search]`, its genotype
  comes from its parent; a search reads no `[pretrain]`), and `run.checkpoint` (fine-tune only);
- what names and files a run, not what it computes: `run.name`, `run.tags` (the arm tag among
  them), `run.stage`, `run.stages` (the stages after it), `run.executor`, `[sweep]` and `[arms]`;
- a stage with a parent reads its genotype from the parent, not `run.genotype` and `run.genotype_nodes`.
Everything else stays in: the seed, device and numeric path (`run.seed`, `device`, `bf16`, `eager`,
`compile`), the data and its options, `[space]`, `[views]` and the stage's own section. A key that
keeps too much only shares less; a key that drops what a stage reads would be wrong, so a setting
added later is in every key until it is listed here.

Arms are not in the key: two arms whose search and pretraining settings agree (an ablation of the
fine-tuning, say) share them, and the shared run carries both arm tags.

A stage that reads labels has no key and is never shared: every fine-tune, and a search whose
objective is not "ssl". Nor is anything after it (its input differs per chain).

Torch-free: `ssnas run` plans its runs before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ssnas.recipe import Recipe

STAGE_SECTIONS = ("search", "pretrain", "finetune")
BOOKKEEPING = ("sweep", "arms")
UNREAD = ("run.name", "run.tags", "run.stage", "run.stages", "run.executor", "run.checkpoint", "data.label_ratio")
FROM_PARENT = ("run.genotype", "run.genotype_nodes")  # a stage with a parent takes its genotype from it
KEY_LENGTH = 16  # hex digits of the SHA-256 digest


def reads_labels(recipe: Recipe, stage: str) -> bool:
    """Whether a stage of this recipe reads labels: every fine-tune, and a search with labels in its objective."""
    return stage == "finetune" or (stage == "search" and recipe.search_config().uses_labels)


def stage_key(recipe: Recipe, stage: str, parent_key: str | None = None) -> str | None:
    """The key of `stage` of `recipe` whose parent has key `parent_key` (None: the stage has no parent);
    None when the stage reads labels, so never shares."""
    if reads_labels(recipe, stage):
        return None
    read = recipe.to_dict()
    for section in (*BOOKKEEPING, *(s for s in STAGE_SECTIONS if s != stage)):
        read.pop(section, None)
    for dotted in (*UNREAD, *(FROM_PARENT if parent_key is not None else ())):
        table, _, name = dotted.partition(".")
        read.get(table, {}).pop(name, None)
    text = json.dumps({"stage": stage, "after": parent_key, "reads": read}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def chain_keys(recipe: Recipe, stages: Sequence[str] | None = None) -> list[str | None]:
    """The key of each stage of the recipe's chain, in order: None from the first stage that reads labels on
    (what follows it reads its output, which is this chain's alone)."""
    keys: list[str | None] = []
    for index, stage in enumerate(stages if stages is not None else recipe.run.stages):
        parent = keys[-1] if keys else None
        keys.append(None if index and parent is None else stage_key(recipe, stage, parent))
    return keys
