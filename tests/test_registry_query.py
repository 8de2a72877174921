"""The `--where` language and sort keys, table-driven over a small registry."""

import sqlite3

import pytest

from ssnas.errors import RegistryError
from ssnas.registry import Registry
from ssnas.registry_query import compile_where

RUNS = [  # name, stage, status, label_ratio, seed, tags, config, metrics (split, key, value)
    ("alpha", "search", "finished", 0.1, 0, ["base"], {"search": {"epochs": 4}, "data": {"label_ratio": 0.1}},
     [("train", "loss", 0.9), ("train", "loss", 0.5)]),
    ("beta", "pretrain", "failed", None, 1, ["base", "ablation"], {"search": {"epochs": 12}},
     [("train", "loss", 0.8)]),
    ("gamma", "finetune", "finished", 0.5, 2, [], {"data": {"label_ratio": 0.5}},
     [("dev", "f1_weighted", 0.6), ("dev", "f1_weighted", 0.7), ("dev", "f1_weighted", 0.65),
      ("test", "f1_weighted", 0.66)]),
    ("delta", "finetune", "finished", 0.1, 0, ["it's"], {"data": {"label_ratio": 0.1}},
     [("dev", "f1_weighted", 0.4), ("test", "f1_weighted", 0.35)]),
    ("eps", "search", "queued", None, 3, [], {"search": {"epochs": 12, "flag": True}}, []),
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    path = tmp_path_factory.mktemp("query") / "registry.db"
    with Registry(path) as registry:
        for name, stage, status, ratio, seed, tags, config, metrics in RUNS:
            run_id = registry.create_run(name=name, stage=stage, config=config, label_ratio=ratio, seed=seed, tags=tags)
            if status != "queued":
                registry.finish_run(run_id, status)
            registry.add_metrics([(run_id, step, 0, split, key, value, 0.0) for step, (split, key, value) in enumerate(metrics)])
        yield registry


def names(rows):
    return [r["name"] for r in rows]


@pytest.mark.parametrize("where, expected", [
    ("status = 'finished'", "alpha gamma delta"),
    ('status == "finished"', "alpha gamma delta"),
    ("status != 'finished'", "beta eps"),
    ("status <> 'finished'", "beta eps"),
    ("stage IN ('search', 'pretrain')", "alpha beta eps"),
    ("stage NOT IN ('search')", "beta gamma delta"),
    ("label_ratio < 0.2", "alpha delta"),
    ("label_ratio != 0.1", "beta gamma eps"),  # a missing value satisfies !=
    ("NOT label_ratio = 0.1", "beta gamma eps"),
    ("label_ratio NOT IN (0.1)", "beta gamma eps"),
    ("label_ratio IS NULL", "beta eps"),
    ("label_ratio is not null AND seed > 0", "gamma"),
    ("seed >= 1 AND seed <= 2", "beta gamma"),
    ("seed = -1 OR seed = 3", "eps"),
    ("search.epochs = 12", "beta eps"),
    ("config.search.epochs >= 4", "alpha beta eps"),
    ("search.flag = true", "eps"),
    ("search.flag = false", ""),
    ("data.label_ratio > 0.2", "gamma"),
    ("metric.test.f1_weighted > 0.5", "gamma"),
    ("metric.dev.f1_weighted = 0.65", "gamma"),  # the last value logged, not the best
    ("metric.f1_weighted < 0.5", "delta"),  # last over any split: delta's test value
    ("metric.train.loss = 0.5", "alpha"),
    ("best_f1 >= 0.7", "gamma"),
    ("latest_loss < 0.6 OR test_f1 < 0.4", "alpha delta"),
    ("tag = 'ablation'", "beta"),
    ("tag != 'base'", "gamma delta eps"),
    ("tag IN ('ablation', \"it's\")", "beta delta"),
    ("tag = 'it''s'", "delta"),
    ("tag NOT IN ('base')", "gamma delta eps"),
    ("(stage = 'finetune' OR stage = 'pretrain') AND NOT status = 'failed'", "gamma delta"),
    ("stage = 'finetune' OR stage = 'pretrain' AND status = 'failed'", "beta gamma delta"),
    ("stage = 'search' and not (status = 'finished')", "eps"),
    ("name = 'x''; DROP TABLE runs; --'", ""),
    # patterns: LIKE ignores ASCII case, GLOB does not; a missing value satisfies only the negated form
    ("name LIKE 'A%'", "alpha"),
    ("name LIKE '_e%'", "beta delta"),
    ("name NOT LIKE '%a'", "eps"),
    ("name GLOB '*[lm]*'", "alpha gamma delta"),
    ("name GLOB 'A*'", ""),
    ("name not glob '?????'", "beta eps"),
    ("search.epochs LIKE '1%'", "beta eps"),
    ("search.epochs NOT LIKE '1%'", "alpha gamma delta"),  # no epochs: satisfies NOT LIKE
    ("metric.test.f1_weighted LIKE '0.6%'", "gamma"),
    ("tag LIKE 'ab%'", "beta"),
    ("tag GLOB '*s*'", "alpha beta delta"),
    ("tag NOT LIKE 'b%'", "gamma delta eps"),
    ("tag LIKE 'it''s'", "delta"),
    ("NOT name LIKE 'e%' AND stage GLOB 's*'", "alpha"),
    ("   ", "alpha beta gamma delta eps"),
])
def test_where_selects_the_right_runs(registry, where, expected):
    assert names(registry.runs(where=where, sort="created_at")) == expected.split()


UNKNOWN = "(run columns: id, name, stage, status, parent_id, group_id, recipe_path, objective, dataset, "


@pytest.mark.parametrize("where, message", [
    ("status = 'finished' AND", "--where: unexpected end of expression"),
    ("status = 'finished' AND AND seed = 1", "--where: unexpected 'AND' at column 25"),
    ("status = 'finished", "--where: unterminated string at column 10"),
    ("name = 'x'; DROP TABLE runs", "--where: unexpected ';' at column 11"),
    ("seed 1", "--where: unexpected '1' at column 6"),
    ("seed = seed", "--where: unexpected 'seed' at column 8"),
    ("seed = NULL", "--where: unexpected 'NULL' at column 8"),
    ("seed IN ()", "--where: unexpected ')' at column 10"),
    ("(seed = 1", "--where: unexpected end of expression"),
    ("seed = 1)", "--where: unexpected ')' at column 9"),
    ("= 1", "--where: unexpected '=' at column 1"),
    ("tag < 'x'", "--where: 'tag' takes =, !=, IN, NOT IN, LIKE or GLOB (column 5)"),
    ("tag IS NULL", "--where: 'tag' takes =, !=, IN, NOT IN, LIKE or GLOB (column 1)"),
    ("name LIKE 5", "--where: LIKE takes a quoted pattern (column 11)"),
    ("name NOT GLOB", "--where: GLOB takes a quoted pattern (column 14)"),
    ("name LIKE", "--where: LIKE takes a quoted pattern (column 10)"),
    ("best_f = 1", "--where: unknown field 'best_f', did you mean 'best_f1'? " + UNKNOWN),
    ("stauts = 'failed'", "--where: unknown field 'stauts', did you mean 'status'? " + UNKNOWN),
    ("foo = 1", "--where: unknown field 'foo' " + UNKNOWN),
    ("config = 1", "--where: unknown field 'config' " + UNKNOWN),
    ("metric.a.b.c = 1", "--where: unknown field 'metric.a.b.c' " + UNKNOWN),
])
def test_bad_filters_name_the_problem_and_column(registry, where, message):
    with pytest.raises(RegistryError) as caught:
        registry.runs(where=where)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_unknown_field_message_lists_what_can_be_named(registry):
    with pytest.raises(RegistryError) as caught:
        registry.runs(where="foo = 1")
    assert str(caught.value).endswith(
        "summaries: latest_loss, best_f1, test_f1, children; tag; config paths like search.epochs; "
        "metrics like metric.test.f1_weighted)")
    assert "revision" in str(caught.value) and " config," not in str(caught.value)


@pytest.mark.parametrize("pattern, expected", [
    (r"'50\%%'", ["50% off"]),  # a literal % then anything
    (r"'50%'", ["50% off", "500"]),
    (r"'a\_b'", ["a_b"]),  # a literal _
    (r"'a_b'", ["a_b", "axb"]),
    (r"'back\\slash'", ["back\\slash"]),  # a literal backslash
    ("'it''s%'", ["it's"]),
])
def test_like_escapes_wildcards_with_a_backslash(tmp_path, pattern, expected):
    with Registry(tmp_path / "registry.db") as registry:
        for name in ("50% off", "500", "a_b", "axb", "back\\slash", "it's"):
            registry.create_run(name=name, stage="search", config={})
        assert names(registry.runs(where=f"name LIKE {pattern}", sort="created_at")) == expected


def test_patterns_travel_as_parameters(registry):
    sql, params = compile_where("name NOT LIKE '%; DROP TABLE runs' OR tag GLOB 'x*'", ["id", "name", "tags"])
    assert "DROP" not in sql and "x*" not in sql
    assert params == ["%; DROP TABLE runs", "x*"]
    assert "ESCAPE '\\'" in sql


def test_values_travel_as_parameters_never_as_sql(registry):
    sql, params = compile_where("name = 'x; DROP TABLE runs' OR search.epochs IN (1, 2.5, true)",
                                ["id", "name", "config"])
    assert "DROP" not in sql and "x;" not in sql and "2.5" not in sql
    assert params == ["x; DROP TABLE runs", "$.search.epochs", 1, 2.5, 1]
    conn = sqlite3.connect(registry.path)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == len(RUNS)


@pytest.mark.parametrize("sort, expected", [
    ("name", "alpha beta delta eps gamma"),
    ("-name", "gamma eps delta beta alpha"),
    ("created_at", "alpha beta gamma delta eps"),
    ("-created_at", "eps delta gamma beta alpha"),
    ("label_ratio", "alpha delta gamma beta eps"),  # missing values last, ties in creation order
    ("-metric.test.f1_weighted", "gamma delta eps beta alpha"),
    ("best_f1", "delta gamma alpha beta eps"),
    ("search.epochs, -seed", "alpha eps beta gamma delta"),
    ("config.data.label_ratio,name", "alpha delta gamma beta eps"),
])
def test_sort(registry, sort, expected):
    assert names(registry.runs(sort=sort)) == expected.split()


def test_sort_with_limit_and_filters(registry):
    assert names(registry.runs(stage="finetune", sort="-best_f1", limit=1)) == ["gamma"]


@pytest.mark.parametrize("sort, message", [
    ("foo", "--sort: unknown field 'foo' (run columns: id,"),
    ("-", "--sort: '-' is not a field name"),
    ("name;drop", "--sort: 'name;drop' is not a field name"),
    ("tag", "--sort: cannot sort by 'tag'"),
])
def test_bad_sort_keys(registry, sort, message):
    with pytest.raises(RegistryError) as caught:
        registry.runs(sort=sort)
    assert str(caught.value).startswith(message)
