"""Offline proofs for deploy/: schemas, linters and the IAM policy, the tools this field uses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy_support import (
    AIRFLOW_VALUES,
    DAGSTER_VALUES,
    DEPLOY,
    DOCKERFILE,
    EKS_GUIDE,
    EKSCTL_CONFIG,
    REPO_ROOT,
    checkov,
    dagster_values_validator,
    kubernetes_version,
    load_documents,
    load_yaml,
    manifest_files,
    render_policy,
    schema_errors,
    shared_schema,
    tool,
)

ALLOWED_S3_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"}


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=REPO_ROOT, check=False)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_manifest_validates_strictly_for_the_pinned_kubernetes(path: Path) -> None:
    documents = load_documents(path)
    assert documents, f"{path} holds no manifest"
    for document in documents:
        checked = kubernetes_validate.validate(document, kubernetes_version(), strict=True)
        assert checked == kubernetes_version().rsplit(".", 1)[0]


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The check above can fail: a misspelt field is an error, not a warning."""
    document = load_documents(DEPLOY / "k8s" / "workspaces-pvc.yaml")[0]
    document["spec"]["accessMode"] = ["ReadWriteMany"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, kubernetes_version(), strict=True)


def test_the_pinned_kubernetes_version_is_supported_by_the_validator() -> None:
    version = kubernetes_version()
    assert re.fullmatch(r"1\.\d+\.0", version)
    installed = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (installed / f"v{version}-local-strict").is_dir(), f"kubernetes-validate has no schema for {version}"


def test_airflow_values_validate_against_the_chart_schema() -> None:
    validator = jsonschema.Draft7Validator(shared_schema("airflow-values.schema.json"))
    assert schema_errors(validator, load_yaml(AIRFLOW_VALUES)) == []


def test_airflow_schema_catches_a_wrong_key() -> None:
    values = load_yaml(AIRFLOW_VALUES)
    values["workers"]["serviceAcount"] = {"create": False}
    validator = jsonschema.Draft7Validator(shared_schema("airflow-values.schema.json"))
    assert any("serviceAcount" in message for message in schema_errors(validator, values))


def test_dagster_values_validate_against_the_chart_schema() -> None:
    """Helm merges the chart's defaults first, so only missing-required errors are expected here."""
    errors = schema_errors(dagster_values_validator(), load_yaml(DAGSTER_VALUES), ignore_required=True)
    assert errors == []


def test_dagster_schema_checks_kubernetes_objects_offline() -> None:
    values = load_yaml(DAGSTER_VALUES)
    values["dagster-user-deployments"]["deployments"][0]["volumeMounts"] = [{"name": "workspaces", "mountPath": 7}]
    values["runLauncher"]["type"] = "NoSuchLauncher"
    errors = schema_errors(dagster_values_validator(), values, ignore_required=True)
    assert any("volumeMounts/0/mountPath" in message for message in errors), errors
    assert any(message.startswith("runLauncher/type") for message in errors), errors


def test_eksctl_config_validates_against_the_eksctl_schema() -> None:
    validator = jsonschema.Draft7Validator(shared_schema("eksctl-clusterconfig-v1alpha5.schema.json"))
    config = load_yaml(EKSCTL_CONFIG)
    assert schema_errors(validator, config) == []
    config["managedNodeGroups"][0]["instanceTyp"] = "m6i.large"
    assert schema_errors(validator, config), "the eksctl schema must reject unknown fields"


def test_eksctl_config_has_what_the_cluster_needs() -> None:
    config = load_yaml(EKSCTL_CONFIG)
    addons = {addon["name"] for addon in config["addons"]}
    assert {"eks-pod-identity-agent", "aws-efs-csi-driver"} <= addons
    assert all(group["privateNetworking"] for group in config["managedNodeGroups"])
    assert "public" not in json.dumps(config["managedNodeGroups"])
    placeholders = [config["vpc"]["id"]] + [
        subnet["id"] for kind in ("private", "public") for subnet in config["vpc"]["subnets"][kind].values()
    ]
    assert all(value.startswith("REPLACE_WITH_") for value in placeholders), placeholders
    assert EKSCTL_CONFIG.read_text(encoding="utf-8").count("PLACEHOLDER") >= 1


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = _run(tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def _every_script() -> list[Path]:
    """Every shell script git knows of or would add (tracked or not ignored), and the CI entry point."""
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.sh", ".ci/run")
    assert listed.returncode == 0, listed.stderr
    return sorted({REPO_ROOT / line for line in listed.stdout.splitlines() if (REPO_ROOT / line).exists()})


def test_shellcheck_passes_on_every_script() -> None:
    scripts = _every_script()
    assert {
        DEPLOY / "airflow" / "create-peer-user.sh",
        DEPLOY / "airflow" / "peer-user-in-airflow.sh",
        DEPLOY / "eks" / "bucket.sh",
        DEPLOY / "eks" / "iam.sh",
        DEPLOY / "k8s" / "create-git-secret.sh",
        REPO_ROOT / ".ci" / "run",
    } <= set(scripts)
    result = _run(tool("shellcheck"), "--external-sources", *scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_unexplained() -> None:
    result = _run(
        checkov(),
        "--directory",
        DEPLOY,
        "--framework",
        "kubernetes",
        "dockerfile",
        "--skip-download",
        "--output",
        "json",
        "--quiet",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    scanned = {report["check_type"]: report["summary"] for report in reports}
    assert {"kubernetes", "dockerfile"} <= set(scanned), scanned
    assert all(summary["passed"] > 0 and summary["failed"] == 0 for summary in scanned.values()), scanned
    for report in reports:
        for skipped in report["results"].get("skipped_checks", []):
            assert skipped.get("suppress_comment"), f"{skipped['check_id']} skipped without a reason"


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_iam_policy_grants_only_the_dataset_prefix() -> None:
    document = render_policy("example-bucket", "datasets")
    statements = _statements(document)
    assert all(statement["Effect"] == "Allow" for statement in statements)
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    assert actions <= ALLOWED_S3_ACTIONS, actions
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert "*" not in json.dumps([statement["Action"] for statement in statements]), "no wildcard actions"
    assert not any("Delete" in action for action in actions)
    for statement in statements:
        resources = _as_list(statement["Resource"])
        object_actions = set(_as_list(statement["Action"])) & {"s3:GetObject", "s3:PutObject"}
        if object_actions:
            assert resources == ["arn:aws:s3:::example-bucket/datasets/*"]
        else:
            assert resources == ["arn:aws:s3:::example-bucket"]
        if "s3:ListBucket" in _as_list(statement["Action"]):
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert set(_as_list(prefixes)) <= {"datasets", "datasets/*"}, prefixes
    assert not any({"NotAction", "NotResource"} & set(statement) for statement in statements)


def test_policy_template_has_no_other_placeholder() -> None:
    text = json.dumps(render_policy("example-bucket", "team/datasets"))
    assert "${" not in text
    assert "arn:aws:s3:::example-bucket/team/datasets/*" in text


def test_dockerignore_sits_at_the_build_context_and_keeps_the_context_small() -> None:
    dockerignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in dockerignore, "everything is excluded unless listed"
    copied = set(re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    for source in sources:
        assert f"!{source}" in dockerignore or f"!{source}/" in dockerignore, f"{source} is not in the context"


def test_image_runs_as_a_non_root_user_and_carries_no_secret() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    assert not re.search(r"(?i)(password|token|secret|aws_access_key)\s*=", text)
    assert "--frozen" in text and "uv.lock" in text


GUIDE_STEPS = (
    "deploy/eks/bucket.sh create",
    '/.venv/bin/dvc" push',
    "docker buildx build",
    "aws cloudformation create-stack",
    "eksctl create cluster",
    "aws efs create-file-system",
    "aws efs create-mount-target",
    "kubectl apply -f deploy/k8s/namespace.yaml",
    "deploy/eks/iam.sh create",
    "deploy/k8s/create-git-secret.sh",
    "helm upgrade --install airflow apache-airflow/airflow",
    "airflow users create",
    "deploy/airflow/create-peer-user.sh",
    "helm upgrade --install dagster dagster/dagster",
    "helm upgrade --install oauth2-proxy oauth2-proxy/oauth2-proxy",
    "dagster instance concurrency set dataset_pipeline 1",
    "airflow dags trigger dataset_pipeline",
    "port-forward svc/oauth2-proxy",
    "dagster job launch -j dataset_pipeline",
    "dataset-pipeline cutover modify_data dagster",
    "git pull",
    "dataset-pipeline verify",
    "deploy/eks/iam.sh delete",
    "aws efs delete-file-system",
    "eksctl delete cluster",
)


def _guide_script(tmp_path: Path) -> Path:
    blocks = re.findall(r"```bash\n(.*?)```", EKS_GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    script = tmp_path / "eks-guide.sh"
    script.write_text("#!/usr/bin/env bash\n" + "\n".join(blocks), encoding="utf-8")
    return script


def test_the_eks_guide_names_every_step_in_order() -> None:
    text = EKS_GUIDE.read_text(encoding="utf-8")
    positions = [text.find(step) for step in GUIDE_STEPS]
    missing = [step for step, position in zip(GUIDE_STEPS, positions, strict=True) if position < 0]
    assert not missing, missing
    assert positions == sorted(positions), "the guide runs the steps in this order"
    for path in set(re.findall(r"\b(deploy/[\w./-]+\.(?:yaml|sh|json)|deploy/image/Dockerfile)\b", text)):
        assert (REPO_ROOT / path).exists(), f"the guide names {path}, which does not exist"


def test_the_eks_guide_commands_are_valid_bash(tmp_path: Path) -> None:
    script = _guide_script(tmp_path)
    syntax = _run("bash", "-n", script)
    assert syntax.returncode == 0, syntax.stderr
    lint = _run(tool("shellcheck"), script)
    assert lint.returncode == 0, lint.stdout
