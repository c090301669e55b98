"""What the deploy tests share: where things are, how to read them, and the schemas to check them."""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"
VENV_BIN = Path(sys.executable).parent

AIRFLOW_VALUES = DEPLOY / "airflow" / "values.yaml"
DAGSTER_VALUES = DEPLOY / "dagster" / "values.yaml"
PROXY_VALUES = DEPLOY / "oauth2-proxy" / "values.yaml"
PROXY_REFERENCE = DEPLOY / "oauth2-proxy" / "chart-reference.json"
EKS_GUIDE = REPO_ROOT / "docs" / "eks.md"
EKSCTL_CONFIG = DEPLOY / "eks" / "cluster.yaml"
POLICY_TEMPLATE = DEPLOY / "eks" / "policy.json"
IAM_SCRIPT = DEPLOY / "eks" / "iam.sh"
BUCKET_SCRIPT = DEPLOY / "eks" / "bucket.sh"
GIT_SECRET_SCRIPT = DEPLOY / "k8s" / "create-git-secret.sh"
PEER_SCRIPT = DEPLOY / "airflow" / "create-peer-user.sh"
DOCKERFILE = DEPLOY / "image" / "Dockerfile"
K8S_DEPENDENCY_URL = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"


def manifest_files() -> list[Path]:
    return sorted((DEPLOY / "k8s").glob("*.yaml"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def all_manifests() -> list[dict[str, Any]]:
    return [doc for path in manifest_files() for doc in load_documents(path)]


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in all_manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def kubernetes_version() -> str:
    """The version the manifests are checked for: the one the eksctl config pins."""
    return f"{load_yaml(EKSCTL_CONFIG)['metadata']['version']}.0"


def shared_schema(name: str) -> dict[str, Any]:
    path = SHARED_SCHEMAS / name
    if not path.is_file():
        pytest.fail(
            f"schema {name} not found at {path}: the deploy tests read the charts' and eksctl's schemas "
            "from ../shared/schemas next to the repository (see its README.md)"
        )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _kubernetes_definitions(strict: bool = False) -> dict[str, Any]:
    """kubernetes-validate's definitions, re-keyed from `$defs` to the `definitions` Dagster's schema asks for."""
    import kubernetes_validate

    version_dir = f"v{kubernetes_version()}-local" + ("-strict" if strict else "")
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / version_dir / "_definitions.json"
    text = path.read_text(encoding="utf-8").replace('"#/$defs/', '"#/definitions/')
    contents: dict[str, Any] = json.loads(text)
    contents["definitions"] = contents.pop("$defs")
    return contents


def dagster_values_validator() -> Any:
    """A validator for the Dagster chart's schema whose Kubernetes refs resolve offline."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    definitions = Resource.from_contents(_kubernetes_definitions(), default_specification=DRAFT7)
    registry = Registry().with_resource(K8S_DEPENDENCY_URL, definitions)
    return jsonschema.Draft7Validator(shared_schema("dagster-values.schema.json"), registry=registry)


def kubernetes_object_errors(definition: str, instance: Any) -> list[str]:
    """Errors of one Kubernetes object, e.g. io.k8s.api.core.v1.ResourceRequirements, unknown fields included."""
    import jsonschema

    definitions = _kubernetes_definitions(strict=True)["definitions"]
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return schema_errors(jsonschema.Draft7Validator(schema), instance)


def schema_errors(validator: Any, instance: Any, *, ignore_required: bool = False) -> list[str]:
    messages = []
    for error in validator.iter_errors(instance):
        if ignore_required and error.validator == "required":
            continue
        location = "/".join(str(part) for part in error.absolute_path) or "<root>"
        messages.append(f"{location}: {error.message[:300]}")
    return messages


def tool(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} not found in {VENV_BIN}: run `make install`")
    return path


def checkov() -> Path:
    configured = os.environ.get("CHECKOV")
    path = Path(configured) if configured else REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if not path.exists():
        pytest.fail(f"checkov not found at {path}: `make test` creates it (set CHECKOV to run it elsewhere)")
    return path


def render_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """The policy document as deploy/eks/iam.sh renders it (the same two substitutions)."""
    text = POLICY_TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("${DATASET_BUCKET}", bucket).replace("${DATASET_PREFIX}", prefix)
    document: dict[str, Any] = json.loads(text)
    return document
