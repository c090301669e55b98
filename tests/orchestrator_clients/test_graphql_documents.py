"""Every GraphQL document the Dagster client sends is valid against the installed Dagster's schema."""

from __future__ import annotations

from importlib import resources

import pytest

from orchestrator_clients.dagster_api import document

DOCUMENTS = sorted(
    path.name.removesuffix(".graphql")
    for path in resources.files("orchestrator_clients").joinpath("graphql").iterdir()
    if path.name.endswith(".graphql")
)


@pytest.fixture(scope="module")
def dagster_schema() -> object:
    from dagster_graphql import schema  # installed with the dagster extra: a missing one fails, never skips

    return schema.create_schema().graphql_schema


def test_the_documents_ship_with_the_package() -> None:
    assert {"launch_run", "reexecute_run", "tagged_runs", "run", "run_events", "locations", "pools"} <= set(DOCUMENTS)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_document_is_valid_against_dagsters_schema(dagster_schema: object, name: str) -> None:
    from graphql import parse, validate

    errors = validate(dagster_schema, parse(document(name)))  # type: ignore[arg-type]
    assert [error.message for error in errors] == []
