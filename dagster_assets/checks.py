"""Checks of a published version: it keeps the schema, grew by exactly its records, is on S3.

Each reads what the latest materialization of `published_dataset` claims and checks it against
the run's workspace, the origin's history and the S3 remote.
"""

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg

from dagster_assets.assets import POD_TAGS, published_dataset
from dagster_assets.resources import PipelineSettings
from shared_tasks.history import history
from shared_tasks.settings import Settings
from shared_tasks.validate import DataValidationError, validate_dataset_file
from shared_tasks.workspace import Workspace


def published_claims(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    """The metadata values of the latest materialization of the published dataset."""
    event = context.instance.get_latest_materialization_event(published_dataset.key)
    if event is None or event.asset_materialization is None:
        raise dg.Failure("published_dataset has never been materialized")
    return {key: entry.value for key, entry in event.asset_materialization.metadata.items()}


def workspace_data(settings: Settings, run_id: str) -> Path:
    return Workspace.for_run(settings.work_root, run_id).repo / settings.dataset_path


@dg.asset_check(asset=published_dataset, description="Every published row fits the schema", op_tags=POD_TAGS)
def schema_valid(context: dg.AssetCheckExecutionContext, pipeline_settings: PipelineSettings) -> dg.AssetCheckResult:
    claims = published_claims(context)
    data = workspace_data(pipeline_settings.load(), str(claims["run_id"]))
    try:
        rows = validate_dataset_file(data)
    except (DataValidationError, OSError) as error:
        return dg.AssetCheckResult(passed=False, metadata={"error": str(error)[:2000]})
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


@dg.asset_check(asset=published_dataset, description="The md5's object exists on the S3 remote", op_tags=POD_TAGS)
def object_on_s3(context: dg.AssetCheckExecutionContext, pipeline_settings: PipelineSettings) -> dg.AssetCheckResult:
    import boto3
    import botocore.exceptions

    claims = published_claims(context)
    url = urlparse(str(claims["s3_url"]))
    client = boto3.client("s3", endpoint_url=pipeline_settings.load().s3_endpoint_url)
    try:
        head = client.head_object(Bucket=url.netloc, Key=url.path.lstrip("/"))
    except botocore.exceptions.ClientError as error:
        return dg.AssetCheckResult(passed=False, metadata={"error": str(error)})
    size = int(head["ContentLength"])
    return dg.AssetCheckResult(passed=size == claims["size"], metadata={"size": size})


CHECKS = [schema_valid, rows_grew_by_records_added, object_on_s3]
