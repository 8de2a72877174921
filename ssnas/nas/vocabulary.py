"""Names of the search space, as plain data (no torch): primitives, defaults, BM-NAS spellings.

The modules behind the names live in `primitives.py`; keeping the vocabulary apart lets genotypes
be validated, parsed and diffed by commands that never build a network. Installed plugins add
primitives by name (`known_primitives`), read from their metadata without importing them.
"""

from ssnas import plugins

# Every primitive ssnas builds itself, in a stable order.
PRIMITIVES: tuple[str, ...] = (
    "zero",
    "sum",
    "attention",
    "linear_glu",
    "concat_fc",
    "concat_conv_mish",
    "product",
)

# The five primitives of BM-NAS and of the SSL-NAS paper: the search space unless a recipe says otherwise.
DEFAULT_PRIMITIVES: tuple[str, ...] = ("zero", "sum", "attention", "linear_glu", "concat_fc")

# BM-NAS spells its fusion operations two ways (code names and class names); both map to ours.
BMNAS_OP_NAMES: dict[str, str] = {
    "zero": "zero",
    "Zero": "zero",
    "none": "zero",
    "sum": "sum",
    "Sum": "sum",
    "scale_dot_attn": "attention",
    "ScaleDotAttn": "attention",
    "cat_conv_glu": "linear_glu",
    "LinearGLU": "linear_glu",
    "cat_conv_relu": "concat_fc",
    "ConcatFC": "concat_fc",
}


def known_primitives() -> tuple[str, ...]:
    """Every primitive a space may name: the built-in ones, then those of installed plugins."""
    return plugins.known_names(plugins.PRIMITIVES_GROUP)
