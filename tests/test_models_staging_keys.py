"""Each staging model's header states its key, the catalog agrees with it, and the synced data keeps it.

The endpoint catalog declares every raw table's key (read by the source and printed in the README); a staging model
restates it in its header, or states the coarser natural key it narrows the raw rows to (one row per student where the
raw table keeps one per year slice) and names the raw key beside it. Both must hold on a real two-year sync.
"""

from __future__ import annotations

import re

import pytest
from model_support import ModelWarehouse

from illuminate_sync.pipelines.models import discover_models, load_model_tests
from illuminate_sync.sources.illuminate.catalog import load_catalog

STAGING = {name: model for name, model in discover_models().items() if model.layer == "staging"}
CATALOG_STAGING = sorted(name for name in STAGING if name.removeprefix("stg_") in load_catalog())
SYNCED_BY_DEFAULT = sorted(
    name for name in STAGING if load_catalog().get(name.removeprefix("stg_"), load_catalog()["sites"]).enabled
)
"""The staging models with rows after a default sync (the per-user endpoints are off unless requested)."""
HEADER_KEY = re.compile(r"\b(?:Natural key|Key): (?:\(([^)]*)\)|([a-z_][a-z0-9_]*))")


def header(model: str) -> str:
    return STAGING[model].description


def stated_key(model: str) -> tuple[str, ...]:
    match = HEADER_KEY.search(header(model))
    assert match, f"{model}: its header should state its key ('Natural key: (...)')"
    return tuple(column.strip() for column in (match.group(1) or match.group(2)).split(","))


def catalog_key(model: str) -> tuple[str, ...]:
    return load_catalog()[model.removeprefix("stg_")].primary_key


def test_every_staging_model_states_a_key() -> None:
    for model in STAGING:
        assert stated_key(model), model


@pytest.mark.parametrize("model", CATALOG_STAGING)
def test_a_staging_header_states_the_catalogs_key(model: str) -> None:
    key, raw_key = stated_key(model), catalog_key(model)
    if key != raw_key:  # a narrower grain than the raw table's: the header names the raw key too
        assert set(key) < set(raw_key), f"{model}: {key} is neither the catalog's key {raw_key} nor part of it"
        assert f"({', '.join(raw_key)})" in " ".join(header(model).split()), (
            f"{model}: the header should name the raw table's key {raw_key}"
        )


@pytest.mark.parametrize("model", SYNCED_BY_DEFAULT)
def test_a_staging_models_key_is_unique_and_never_null(models_warehouse: ModelWarehouse, model: str) -> None:
    columns = ", ".join(stated_key(model))
    nulls = " or ".join(f"{column} is null" for column in stated_key(model))
    [(rows, keys, null_rows)] = models_warehouse.rows(
        f"select count(*), count(distinct ({columns})), count(*) filter (where {nulls}) from analytics.{model}"
    )
    assert rows > 0, f"{model} is empty: the test would prove nothing"
    assert (keys, null_rows) == (rows, 0), f"{model}: {rows - keys} repeated keys, {null_rows} with a NULL part"


def test_the_key_tests_generated_from_the_catalog_pass_on_the_synced_district(models_warehouse: ModelWarehouse) -> None:
    """`illuminate-sync models --test` runs a unique and a not-null test on each catalog staging model's key."""
    generated = [test for test in load_model_tests() if test.model in CATALOG_STAGING and test.kind != "assertion"]
    assert {test.model for test in generated if test.kind == "unique"} == set(CATALOG_STAGING)
    failing = {test.label: rows for test in generated if (rows := models_warehouse.rows(test.query)[0][0])}
    assert failing == {}
