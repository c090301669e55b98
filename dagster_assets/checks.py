"""Checks of a published version: it keeps the schema, grew by exactly its records, is on the remote.

Each reads what the latest materialization of `published_dataset` claims and checks it with the
shared steps' own code: the run's workspace (in either layout), the origin's history, the remote.
"""

from typing import Any

import dagster as dg

from dagster_assets.assets import POD_TAGS, published_dataset
from dagster_assets.peering import CHECKED_COMMIT_TAG
from dagster_assets.resources import PipelineSettings
from shared_tasks.run.audit import missing_on_remote, validated_rows
from shared_tasks.versioning.history import history


def published_claims(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    """What the materialization of the published dataset under check claims: the one of the commit the
    run was asked to check (a version Airflow made), or else the latest."""
    wanted = context.run.tags.get(CHECKED_COMMIT_TAG)
    found = context.instance.fetch_materializations(published_dataset.key, limit=1 if wanted is None else 200)
    for record in found.records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        claims = {key: entry.value for key, entry in materialization.metadata.items()}
        if wanted is None or claims.get("commit") == wanted:
            return claims
    raise dg.Failure(f"published_dataset has no materialization{f' of commit {wanted}' if wanted else ''}")


def _failed(error: Exception) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={"error": str(error)[:2000]})


@dg.asset_check(asset=published_dataset, description="Every published row fits the schema", op_tags=POD_TAGS)
def schema_valid(context: dg.AssetCheckExecutionContext, pipeline_settings: PipelineSettings) -> dg.AssetCheckResult:
    claims = published_claims(context)
    try:
        rows = validated_rows(pipeline_settings.load(), str(claims["run_id"]), str(claims["md5"]))
    except (ValueError, OSError, RuntimeError) as error:  # DataValidationError is a ValueError
        return _failed(error)
    return dg.AssetCheckResult(passed=rows == claims["rows"], metadata={"rows": rows})


@dg.asset_check(asset=published_dataset, description="Rows grew by exactly the records the run added", op_tags=POD_TAGS)
def rows_grew_by_records_added(
    context: dg.AssetCheckExecutionContext, pipeline_settings: PipelineSettings
) -> dg.AssetCheckResult:
    claims = published_claims(context)
    versions = history(pipeline_settings.load())
    commits = [version.commit for version in versions]
    if claims["commit"] not in commits:
        return dg.AssetCheckResult(passed=False, metadata={"error": f"{claims['commit']} is not on the branch"})
    index = commits.index(claims["commit"])
    current = versions[index]
    previous_rows = versions[index + 1].rows if index + 1 < len(versions) else None
    passed = previous_rows is not None and current.rows == previous_rows + claims["rows_added"] == claims["rows"]
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"previous_rows": previous_rows or 0, "rows": current.rows or 0, "rows_added": claims["rows_added"]},
    )


@dg.asset_check(asset=published_dataset, description="Every object of the version is on the remote", op_tags=POD_TAGS)
def object_on_s3(context: dg.AssetCheckExecutionContext, pipeline_settings: PipelineSettings) -> dg.AssetCheckResult:
    claims = published_claims(context)
    try:
        missing = missing_on_remote(pipeline_settings.load(), str(claims["run_id"]), str(claims["md5"]))
    except (ValueError, OSError, RuntimeError) as error:
        return _failed(error)
    return dg.AssetCheckResult(passed=not missing, metadata={"missing_objects": len(missing), "md5": claims["md5"]})


CHECKS = [schema_valid, rows_grew_by_records_added, object_on_s3]
