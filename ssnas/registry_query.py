r"""The `--where` language and sort keys of `ssnas runs`, compiled to parameterised SQL.

A filter is a small expression over a run's fields; values never reach the SQL text, they travel as
parameters, so a filter can select runs but never change the database. Grammar:

    expr       := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | "(" or ")" | comparison
    comparison := field ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field ["NOT"] ("LIKE" | "GLOB") string
                | field "IS" ["NOT"] "NULL"
    value      := number | 'string' | "string" | true | false

Fields (what each compiles to, all columns of the `runs` table in the enclosing query):
- run columns: `status`, `stage`, `label_ratio`, `seed`, `name`, `group_id`, ...
- summaries: `latest_loss` (last train loss), `best_f1` (max dev f1_weighted), `test_f1`;
- `tag`: the run carries that tag (`=`, `!=`, `IN`, `NOT IN`) or one matching a pattern (`LIKE`, `GLOB`);
- config paths: `search.epochs`, `data.label_ratio`, optionally prefixed `config.`;
- metrics: `metric.KEY` (the last value of KEY logged, any split) and `metric.SPLIT.KEY`
  (e.g. `metric.test.f1_weighted`): always the *last* value logged, which for a test metric is the
  one reported. `best_f1` is the one maximum.

`LIKE` patterns are SQL's: `%` any text, `_` one character, ASCII case ignored, and `\` before `%`, `_` or
`\` takes it literally (`name LIKE '50\%%'`). `GLOB` patterns are the shell's: `*`, `?`, `[abc]`, case
sensitive. A pattern is a parameter like every value.

A field without a value (NULL: a missing config key, a metric never logged) makes every comparison
false except `!=`, `NOT IN`, `NOT LIKE` and `NOT GLOB`, which it satisfies; so `NOT (x = 1)` and
`x != 1` agree.
Keywords are case-insensitive; fields are not. Parentheses and NOTs nest at most `MAX_NESTING` deep and
integers fit in 64 bits: anything else is an error naming its column, never a crash. A run whose stored
config or tags are corrupt JSON is left out of every filter that reads them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ssnas.errors import RegistryError

# The per-run summaries every listing carries; each is one indexed lookup per run.
SUMMARIES: dict[str, str] = {
    "latest_loss": (
        "(SELECT m.value FROM metrics AS m INDEXED BY metrics_run_key"
        " WHERE m.run_id = runs.id AND m.key = 'loss' AND m.split = 'train' ORDER BY m.id DESC LIMIT 1)"
    ),
    "best_f1": (
        "(SELECT MAX(m.value) FROM metrics AS m INDEXED BY metrics_run_key"
        " WHERE m.run_id = runs.id AND m.key = 'f1_weighted' AND m.split = 'dev')"
    ),
    "test_f1": (
        "(SELECT m.value FROM metrics AS m INDEXED BY metrics_run_key"
        " WHERE m.run_id = runs.id AND m.key = 'f1_weighted' AND m.split = 'test' ORDER BY m.id DESC LIMIT 1)"
    ),
    # runs started from this one: more than one for a stage shared between chains (ssnas.stage_key)
    "children": "(SELECT count(*) FROM runs AS c INDEXED BY runs_parent_id WHERE c.parent_id = runs.id)",
}

# Columns that are not fields: JSON documents reached through their own syntax.
_NOT_FIELDS = ("config", "tags", "versions")

_LAST_METRIC_IN_SPLIT = (
    "(SELECT m.value FROM metrics AS m INDEXED BY metrics_run_key"
    " WHERE m.run_id = runs.id AND m.key = ? AND m.split = ? ORDER BY m.id DESC LIMIT 1)"
)
_LAST_METRIC = (
    "(SELECT m.value FROM metrics AS m WHERE m.id = (SELECT MAX(l.id) FROM metrics AS l INDEXED BY metrics_run_key"
    " WHERE l.run_id = runs.id AND l.key = ?))"
)
# A JSON column that does not decode reads as missing (NULL), never as an error: one corrupt row must not
# break the query of all the others. A filter that reads such a column leaves its run out (`_Parser.parse`).
_VALID = {"config": "json_valid(runs.config)", "tags": "json_valid(runs.tags)"}
_CONFIG = f"CASE WHEN {_VALID['config']} THEN runs.config END"
HAS_TAG = f"EXISTS (SELECT 1 FROM json_each(CASE WHEN {_VALID['tags']} THEN runs.tags END) AS t WHERE t.value {{test}})"
MAX_NESTING = 32  # parentheses and NOTs inside each other: far beyond a filter people write
_INT64 = (-(2**63), 2**63 - 1)  # what SQLite stores as an integer

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<name>[A-Za-z_]\w*(?:\.\w+)*)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_KEYWORDS = ("AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "LIKE", "GLOB")
# A pattern operator as SQL, with the escape character of LIKE spelled out (SQLite's LIKE has none by default).
_PATTERNS = {"LIKE": "LIKE ? ESCAPE '\\'", "GLOB": "GLOB ?"}
_OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, keyword, op, punct, end
    text: str
    column: int  # 1-based, for messages


@dataclass(frozen=True)
class Field:
    """A run field as an SQL expression over `runs` and the parameters it needs, in order.

    `kind` and `parts` say the same in Python terms, for readers of `Run` records (ssnas.runs.table):
    kind `column` or `summary` is the `Run` attribute `name`; `config` the path `parts` into the config;
    `metric` the last value of series `parts` = (KEY,) in any split or (SPLIT, KEY); `tag` a filter only.
    """

    name: str
    sql: str
    params: tuple = ()
    is_tag: bool = False
    reads: str | None = None  # the JSON column it reads ("config", "tags"): a corrupt one leaves the run out
    kind: str = "column"
    parts: tuple[str, ...] = ()


def tokenize(text: str, flag: str = "--where") -> list[Token]:
    """Split a filter into tokens, ending with an `end` token; a character outside the language is an error."""
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            what = "unterminated string" if text[pos] in "'\"" else f"unexpected {text[pos]!r}"
            raise RegistryError(f"{flag}: {what} at column {pos + 1}")
        kind = match.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind != "space":
            word = match.group()
            if kind == "name" and word.upper() in _KEYWORDS:
                kind, word = "keyword", word.upper()
            tokens.append(Token(kind, word, pos + 1))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def field_names(run_columns: Sequence[str]) -> tuple[str, ...]:
    """The run columns a filter may name directly."""
    return tuple(c for c in run_columns if c not in _NOT_FIELDS)


def resolve_field(name: str, run_columns: Sequence[str], flag: str = "--where", also: Sequence[str] = ()) -> Field:
    """The SQL for one field name, or a RegistryError that suggests the nearest name and lists what can be
    named; `also` are further names the caller accepts (offered as suggestions only)."""
    if name in SUMMARIES:
        return Field(name, SUMMARIES[name], kind="summary")
    if name == "tag":
        return Field(name, "", is_tag=True, reads="tags", kind="tag")
    if name in field_names(run_columns):
        return Field(name, f'runs."{name}"')
    parts = name.split(".")
    if parts[0] == "metric" and len(parts) == 2:
        return Field(name, _LAST_METRIC, (parts[1],), kind="metric", parts=tuple(parts[1:]))
    if parts[0] == "metric" and len(parts) == 3:
        return Field(name, _LAST_METRIC_IN_SPLIT, (parts[2], parts[1]), kind="metric", parts=tuple(parts[1:]))
    if parts[0] == "config" and len(parts) > 1:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] != "metric":
        path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
        return Field(name, f"json_extract({_CONFIG}, ?)", (path,), reads="config", kind="config", parts=tuple(parts))
    known = [*field_names(run_columns), *SUMMARIES, "tag", *also]
    raise RegistryError(
        f"{flag}: unknown field {name!r}{did_you_mean(name, known)} "
        f"(run columns: {', '.join(field_names(run_columns))}; "
        f"summaries: {', '.join(SUMMARIES)}; tag; {''.join(f'{other}; ' for other in also)}"
        f"config paths like search.epochs; "
        f"metrics like metric.test.f1_weighted)"
    )


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """`, did you mean 'best_f1'?` for the nearest known name, or nothing when none is near."""
    near = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=1, cutoff=0.6)
    return f", did you mean {near[0]!r}?" if near else ""


def string_literal(text: str) -> str:
    """`text` as a string of the language (quotes doubled): for programs that build a filter."""
    return "'" + text.replace("'", "''") + "'"


def compile_where(text: str, run_columns: Sequence[str]) -> tuple[str, list]:
    """A filter as an SQL boolean over `runs` and its parameters; RegistryError naming the column at fault."""
    return _Parser(text, run_columns).parse()


def compile_sort(text: str, run_columns: Sequence[str]) -> tuple[str, list]:
    """`-created_at`, `label_ratio,-metric.test.f1_weighted`, ... as an ORDER BY clause (without the keywords).

    A `-` prefix sorts descending; runs without a value go last either way; ties keep insertion order.
    """
    terms: list[str] = []
    params: list = []
    keys = [k.strip() for k in text.split(",")]
    for key in keys:
        descending = key.startswith("-")
        name = key.lstrip("-+").strip()
        if not re.fullmatch(r"[A-Za-z_]\w*(?:\.\w+)*", name):
            raise RegistryError(f"--sort: {key!r} is not a field name")
        field = resolve_field(name, run_columns, flag="--sort")
        if field.is_tag:
            raise RegistryError("--sort: cannot sort by 'tag'")
        terms.append(f"{field.sql} {'DESC' if descending else 'ASC'} NULLS LAST")
        params.extend(field.params)
    last = "DESC" if keys[0].startswith("-") else "ASC"
    terms.append(f"runs.rowid {last}")
    return ", ".join(terms), params


class _Parser:
    """Recursive descent over the tokens; builds SQL text and its parameter list left to right."""

    def __init__(self, text: str, run_columns: Sequence[str]) -> None:
        self.tokens = tokenize(text)
        self.run_columns = run_columns
        self.pos = 0
        self.depth = 0
        self.params: list = []
        self.reads: set[str] = set()  # the JSON columns the filter reads

    def parse(self) -> tuple[str, list]:
        sql = self._or()
        self._expect("end")
        return " AND ".join([*(_VALID[column] for column in sorted(self.reads)), sql]), self.params

    # -- token helpers

    @property
    def _token(self) -> Token:
        return self.tokens[self.pos]

    def _take(self, kind: str, text: str | None = None) -> Token | None:
        token = self._token
        if token.kind == kind and (text is None or token.text == text):
            self.pos += 1
            return token
        return None

    def _expect(self, kind: str, text: str | None = None) -> Token:
        token = self._take(kind, text)
        if token is None:
            raise self._unexpected()
        return token

    def _unexpected(self, token: Token | None = None) -> RegistryError:
        token = token or self._token
        if token.kind == "end":
            return RegistryError("--where: unexpected end of expression")
        return RegistryError(f"--where: unexpected '{token.text}' at column {token.column}")

    # -- grammar

    def _or(self) -> str:
        parts = [self._and()]
        while self._take("keyword", "OR"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._take("keyword", "AND"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        token = self._token
        if not (self._take("keyword", "NOT") or self._take("punct", "(")):
            return self._comparison()
        if self.depth == MAX_NESTING:  # recursion stops here, long before Python's limit
            raise RegistryError(f"--where: nested more than {MAX_NESTING} deep (at column {token.column})")
        self.depth += 1
        if token.text == "NOT":
            inner = f"(NOT {self._not()})"
        else:
            inner = self._or()
            self._expect("punct", ")")
        self.depth -= 1
        return inner

    def _comparison(self) -> str:
        token = self._expect("name")
        field = resolve_field(token.text, self.run_columns)
        if field.reads:
            self.reads.add(field.reads)
        if self._take("keyword", "IS"):
            negated = bool(self._take("keyword", "NOT"))
            self._expect("keyword", "NULL")
            if field.is_tag:
                raise _tag_error(token.column)
            self.params.extend(field.params)
            return f"({field.sql} IS {'NOT ' if negated else ''}NULL)"
        negated = bool(self._take("keyword", "NOT"))
        pattern = self._take("keyword", "LIKE") or self._take("keyword", "GLOB")
        if pattern:
            return self._pattern(field, pattern.text, negated)
        if negated or self._take("keyword", "IN"):
            if negated:
                self._expect("keyword", "IN")
            return self._membership(field, negated)
        op_token = self._expect("op")
        op = _OPERATORS[op_token.text]
        value = self._value()
        if field.is_tag:
            if op not in ("=", "!="):
                raise _tag_error(op_token.column)
            self.params.append(value)
            test = HAS_TAG.format(test="= ?")
            return test if op == "=" else f"(NOT {test})"
        self.params.extend(field.params)
        self.params.append(value)
        if op == "!=":
            return f"({field.sql} IS NOT ?)"
        return f"coalesce({field.sql} {op} ?, 0)"

    def _membership(self, field: Field, negated: bool) -> str:
        self._expect("punct", "(")
        values = [self._value()]
        while self._take("punct", ","):
            values.append(self._value())
        self._expect("punct", ")")
        marks = ", ".join("?" * len(values))
        if field.is_tag:
            self.params.extend(values)
            test = HAS_TAG.format(test=f"IN ({marks})")
            return f"(NOT {test})" if negated else test
        self.params.extend(field.params)
        self.params.extend(values)
        if negated:
            return f"coalesce({field.sql} NOT IN ({marks}), 1)"
        return f"coalesce({field.sql} IN ({marks}), 0)"

    def _pattern(self, field: Field, operator: str, negated: bool) -> str:
        """`LIKE` or `GLOB` against a string pattern; a missing value satisfies only the negated form."""
        token = self._token
        if token.kind != "string":
            raise RegistryError(f"--where: {operator} takes a quoted pattern (column {token.column})")
        pattern = self._value()
        test = _PATTERNS[operator]
        if field.is_tag:
            self.params.append(pattern)
            matches = HAS_TAG.format(test=test)
            return f"(NOT {matches})" if negated else matches
        self.params.extend(field.params)
        self.params.append(pattern)
        return f"coalesce({field.sql} {'NOT ' if negated else ''}{test}, {int(negated)})"

    def _value(self) -> str | int | float:
        token = self._token
        self.pos += 1
        if token.kind == "number":
            return _number(token)
        if token.kind == "string":
            quote = token.text[0]
            return token.text[1:-1].replace(quote * 2, quote)
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            return 1 if token.text == "TRUE" else 0
        raise self._unexpected(token)


def _tag_error(column: int) -> RegistryError:
    return RegistryError(f"--where: 'tag' takes =, !=, IN, NOT IN, LIKE or GLOB (column {column})")


def _number(token: Token) -> int | float:
    """A number literal; an integer SQLite cannot hold (beyond 64 bits) is an error, not an overflow."""
    if not re.fullmatch(r"-?\d+", token.text):
        return float(token.text)
    digits = token.text.lstrip("-").lstrip("0")
    value = int(token.text) if len(digits) <= 19 else None  # int() of thousands of digits is refused anyway
    if value is None or not _INT64[0] <= value <= _INT64[1]:
        shown = token.text if len(token.text) <= 24 else f"{token.text[:20]}..."
        raise RegistryError(f"--where: {shown} at column {token.column} is out of range (integers fit in 64 bits)")
    return value
