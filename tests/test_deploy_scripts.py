"""deploy/eks/bucket.sh, deploy/eks/iam.sh and deploy/k8s/create-git-secret.sh, run by bash against
fake aws and kubectl.

The fakes record every argv (and what came on stdin) and keep a small model of S3 buckets, IAM and
EKS Pod Identity in a JSON file, answering with the AWS CLI's shapes, `--query` (JMESPath) included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fake_secret
from tests.deploy_support import BUCKET_SCRIPT, GIT_SECRET_SCRIPT, IAM_SCRIPT, VENV_BIN, render_policy

ACCOUNT = "111122223333"
OWNER_TAG = {"Key": "dataset-pipeline/created-by", "Value": "deploy-eks-iam-sh"}
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/dataset-pipeline-s3-dataset"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/dataset-pipeline-s3"

FAKE_AWS = r"""
import json, os, sys, uuid
import jmespath

STATE = os.environ["FAKE_STATE"]
ACCOUNT = "111122223333"


def record(argv, files):
    with open(os.environ["FAKE_CALLS"], "a") as log:
        log.write(json.dumps({"argv": argv, "files": files}) + "\n")


def options(args):
    parsed, key = {}, None
    for arg in args:
        if arg.startswith("--"):
            key = arg[2:]
            parsed.setdefault(key, [])
        elif key is not None:
            parsed[key].append(arg)
    return {key: (values[0] if len(values) == 1 else values) for key, values in parsed.items()}


def document(value):
    assert value.startswith("file://"), value
    with open(value[len("file://"):]) as handle:
        return json.load(handle)


def error(code, operation, message):
    sys.stderr.write(f"\nAn error occurred ({code}) when calling the {operation} operation: {message}\n")
    sys.exit(254)


def iam_tags(value):
    values = value if isinstance(value, list) else [value]
    tags = []
    for item in values:
        fields = dict(part.split("=", 1) for part in item.split(","))
        tags.append({"Key": fields["Key"], "Value": fields["Value"]})
    return tags


def policy(state, arn, operation):
    if arn not in state["policies"]:
        error("NoSuchEntity", operation, f"Policy {arn} does not exist or is not attachable.")
    return state["policies"][arn]


def role(state, name, operation):
    if name not in state["roles"]:
        error("NoSuchEntity", operation, f"The role with name {name} cannot be found.")
    return state["roles"][name]


def default_version(entry):
    return next(version for version in entry["versions"] if version["IsDefaultVersion"])


def iam(state, op, opts, files):
    if op == "get-policy":
        entry = policy(state, opts["policy-arn"], "GetPolicy")
        return {"Policy": {"Arn": opts["policy-arn"], "PolicyName": entry["name"],
                           "DefaultVersionId": default_version(entry)["VersionId"]}}
    if op == "create-policy":
        arn = f"arn:aws:iam::{ACCOUNT}:policy/{opts['policy-name']}"
        if arn in state["policies"]:
            error("EntityAlreadyExists", "CreatePolicy", "A policy with that name already exists.")
        doc = document(opts["policy-document"])
        state["policies"][arn] = {"name": opts["policy-name"], "tags": iam_tags(opts.get("tags", [])),
                                  "versions": [{"VersionId": "v1", "IsDefaultVersion": True, "Document": doc}]}
        return {"Policy": {"Arn": arn}}
    if op == "list-policy-tags":
        return {"Tags": policy(state, opts["policy-arn"], "ListPolicyTags")["tags"]}
    if op == "get-policy-version":
        entry = policy(state, opts["policy-arn"], "GetPolicyVersion")
        return {"PolicyVersion": next(v for v in entry["versions"] if v["VersionId"] == opts["version-id"])}
    if op == "list-policy-versions":
        return {"Versions": policy(state, opts["policy-arn"], "ListPolicyVersions")["versions"]}
    if op == "create-policy-version":
        entry = policy(state, opts["policy-arn"], "CreatePolicyVersion")
        if len(entry["versions"]) >= 5:
            error("LimitExceeded", "CreatePolicyVersion", "A managed policy can have up to 5 versions.")
        for version in entry["versions"]:
            version["IsDefaultVersion"] = False
        number = max(int(v["VersionId"][1:]) for v in entry["versions"]) + 1
        entry["versions"].append({"VersionId": f"v{number}", "IsDefaultVersion": True,
                                  "Document": document(opts["policy-document"])})
        return {}
    if op == "delete-policy-version":
        entry = policy(state, opts["policy-arn"], "DeletePolicyVersion")
        if default_version(entry)["VersionId"] == opts["version-id"]:
            error("DeleteConflict", "DeletePolicyVersion", "Cannot delete the default version.")
        entry["versions"] = [v for v in entry["versions"] if v["VersionId"] != opts["version-id"]]
        return None
    if op == "delete-policy":
        entry = policy(state, opts["policy-arn"], "DeletePolicy")
        if any(opts["policy-arn"] in r["attached"] for r in state["roles"].values()) or len(entry["versions"]) > 1:
            error("DeleteConflict", "DeletePolicy", "Cannot delete a policy attached to entities or with versions.")
        del state["policies"][opts["policy-arn"]]
        return None
    if op == "get-role":
        entry = role(state, opts["role-name"], "GetRole")
        return {"Role": {"RoleName": opts["role-name"], "Arn": entry["arn"]}}
    if op == "create-role":
        if opts["role-name"] in state["roles"]:
            error("EntityAlreadyExists", "CreateRole", "Role already exists.")
        state["roles"][opts["role-name"]] = {
            "arn": f"arn:aws:iam::{ACCOUNT}:role/{opts['role-name']}", "tags": iam_tags(opts.get("tags", [])),
            "trust": document(opts["assume-role-policy-document"]), "attached": []}
        return {"Role": {"Arn": state["roles"][opts["role-name"]]["arn"]}}
    if op == "update-assume-role-policy":
        role(state, opts["role-name"], "UpdateAssumeRolePolicy")["trust"] = document(opts["policy-document"])
        return None
    if op == "list-role-tags":
        return {"Tags": role(state, opts["role-name"], "ListRoleTags")["tags"]}
    if op == "attach-role-policy":
        entry = role(state, opts["role-name"], "AttachRolePolicy")
        policy(state, opts["policy-arn"], "AttachRolePolicy")
        if opts["policy-arn"] not in entry["attached"]:
            entry["attached"].append(opts["policy-arn"])
        return None
    if op == "list-attached-role-policies":
        entry = role(state, opts["role-name"], "ListAttachedRolePolicies")
        attached = [{"PolicyArn": arn, "PolicyName": arn.rsplit("/", 1)[1]} for arn in entry["attached"]]
        return {"AttachedPolicies": attached}
    if op == "detach-role-policy":
        entry = role(state, opts["role-name"], "DetachRolePolicy")
        if opts["policy-arn"] not in entry["attached"]:
            error("NoSuchEntity", "DetachRolePolicy", "Policy is not attached.")
        entry["attached"].remove(opts["policy-arn"])
        return None
    if op == "delete-role":
        entry = role(state, opts["role-name"], "DeleteRole")
        if entry["attached"]:
            error("DeleteConflict", "DeleteRole", "Cannot delete entity, must detach all policies first.")
        del state["roles"][opts["role-name"]]
        return None
    raise SystemExit(f"fake aws: unsupported iam {op}")


def eks(state, op, opts, files):
    associations = state["associations"]
    if op == "list-pod-identity-associations":
        found = [a for a in associations.values() if a["clusterName"] == opts["cluster-name"]
                 and a["namespace"] == opts.get("namespace", a["namespace"])
                 and a["serviceAccount"] == opts.get("service-account", a["serviceAccount"])]
        return {"associations": [{k: a[k] for k in ("associationId", "clusterName", "namespace", "serviceAccount")}
                                 for a in found]}
    if op == "create-pod-identity-association":
        if any(a["namespace"] == opts["namespace"] and a["serviceAccount"] == opts["service-account"]
               for a in associations.values()):
            error("ResourceInUseException", "CreatePodIdentityAssociation", "Association already exists.")
        association_id = "a-" + uuid.uuid4().hex[:17]
        tags = dict(item.split("=", 1) for item in (opts.get("tags") or "").split(",") if item)
        associations[association_id] = {"associationId": association_id, "clusterName": opts["cluster-name"],
                                         "namespace": opts["namespace"], "serviceAccount": opts["service-account"],
                                         "roleArn": opts["role-arn"], "tags": tags}
        return {"association": associations[association_id]}
    if op in ("describe-pod-identity-association", "delete-pod-identity-association"):
        if opts["association-id"] not in associations:
            error("ResourceNotFoundException", op, "Association not found.")
        if op.startswith("delete"):
            return {"association": associations.pop(opts["association-id"])}
        return {"association": associations[opts["association-id"]]}
    raise SystemExit(f"fake aws: unsupported eks {op}")


def shorthand(value):
    return dict(part.split("=", 1) for part in value.split(","))


def bucket(state, name, operation):
    # head-bucket has no body, so the CLI can name only the HTTP status.
    head = operation == "HeadBucket"
    if name not in state["buckets"]:
        error("404" if head else "NoSuchBucket", operation, "Not Found")
    entry = state["buckets"][name]
    if entry.get("owner", ACCOUNT) != ACCOUNT:
        error("403" if head else "AccessDenied", operation, "Forbidden")
    return entry


def s3api(state, op, opts, files):
    name = opts["bucket"]
    if op == "head-bucket":
        bucket(state, name, "HeadBucket")
        return {"BucketRegion": state["buckets"][name]["region"]}
    if op == "create-bucket":
        if name in state["buckets"]:
            error("BucketAlreadyOwnedByYou", "CreateBucket", "The bucket exists and is yours.")
        configuration = opts.get("create-bucket-configuration")
        constraint = shorthand(configuration)["LocationConstraint"] if configuration else None
        # us-east-1 takes no constraint; every other region wants its own name.
        if constraint != (None if opts["region"] == "us-east-1" else opts["region"]):
            error("IllegalLocationConstraintException", "CreateBucket", "The location constraint is incompatible.")
        state["buckets"][name] = {"region": opts["region"], "versioning": None, "public_access_block": None}
        return {"Location": f"/{name}"}
    entry = bucket(state, name, "".join(word.title() for word in op.split("-")))
    if op == "get-public-access-block":
        if entry["public_access_block"] is None:
            error("NoSuchPublicAccessBlockConfiguration", "GetPublicAccessBlock", "The configuration was not found")
        return {"PublicAccessBlockConfiguration": entry["public_access_block"]}
    if op == "put-public-access-block":
        fields = shorthand(opts["public-access-block-configuration"])
        entry["public_access_block"] = {key: value == "true" for key, value in fields.items()}
        return None
    if op == "get-bucket-versioning":
        return {"Status": entry["versioning"]} if entry["versioning"] else {}
    if op == "put-bucket-versioning":
        entry["versioning"] = shorthand(opts["versioning-configuration"])["Status"]
        return None
    raise SystemExit(f"fake aws: unsupported s3api {op}")


def text(value):
    if value is None:
        return "None"
    if isinstance(value, list):
        return "\t".join(text(item) for item in value)
    if isinstance(value, dict):
        return "\t".join(text(item) for item in value.values())
    if isinstance(value, bool):
        return str(value)
    return str(value)


def main():
    argv = sys.argv[1:]
    service, op, opts = argv[0], argv[1], options(argv[2:])
    files = {v: open(v[7:]).read() for v in argv if v.startswith("file://")}
    record(["aws", *argv], files)
    if os.environ.get("FAKE_AWS_FAIL") == f"{service} {op}":
        error("AccessDenied", op, "User is not authorized to perform this action")
    with open(STATE) as handle:
        state = json.load(handle)
    if service == "sts":
        result = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/tester", "UserId": "AIDEXAMPLE"}
    else:
        result = {"iam": iam, "eks": eks, "s3api": s3api}[service](state, op, opts, files)
    with open(STATE, "w") as handle:
        json.dump(state, handle)
    if result is None:
        return
    if "query" in opts:
        result = jmespath.search(opts["query"], result)
    if opts.get("output") == "text":
        print(text(result))
    else:
        print(json.dumps(result, indent=2))


main()
"""

# kubectl: records argv and stdin; `create ... --dry-run=client -o yaml` prints a manifest made
# from its env-file on stdin, `apply -f -` keeps the Secret it was given (in FAKE_KUBE_STATE) and
# `get secret` answers from there; `exec ... -- COMMAND` runs COMMAND here, stdin passed on, as
# if it ran in the pod.
FAKE_KUBECTL = r"""
import base64, json, os, re, subprocess, sys

argv = sys.argv[1:]
stdin = sys.stdin.read() if not sys.stdin.isatty() else ""
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps({"argv": ["kubectl", *argv], "stdin": stdin}) + "\n")
if os.environ.get("FAKE_KUBECTL_FAIL") == argv[0]:
    sys.stderr.write("error: the server has asked for the client to provide credentials\n")
    sys.exit(1)
state_file = os.environ["FAKE_KUBE_STATE"]
secrets = json.load(open(state_file)) if os.path.exists(state_file) else {}
if argv[:3] == ["create", "secret", "generic"]:
    assert "--from-env-file=/dev/stdin" in argv, argv
    pairs = dict(line.split("=", 1) for line in stdin.splitlines() if line)
    data = {key: base64.b64encode(value.encode()).decode() for key, value in pairs.items()}
    print(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": argv[3]}, "data": data}))
elif argv[0] == "apply":
    manifest = json.loads(stdin)
    secrets[manifest["metadata"]["name"]] = manifest
    json.dump(secrets, open(state_file, "w"))
    print("secret/" + manifest["metadata"]["name"] + " configured")
elif argv[:2] == ["get", "secret"]:
    if argv[2] not in secrets:
        if "--ignore-not-found" in argv:
            sys.exit(0)
        sys.stderr.write(f'Error from server (NotFound): secrets "{argv[2]}" not found\n')
        sys.exit(1)
    (key,) = re.findall(r"jsonpath=\{\.data\.(\w+)\}", " ".join(argv))
    print(secrets[argv[2]]["data"].get(key, ""), end="")
elif argv[0] == "exec":
    command = argv[argv.index("--") + 1 :]
    sys.exit(subprocess.run(command, input=stdin, text=True, check=False).returncode)
"""


@dataclass
class Fakes:
    bin_dir: Path
    state_file: Path
    calls_file: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            # The fakes first; python3 (which iam.sh uses for JSON) from this environment.
            "PATH": os.pathsep.join([str(self.bin_dir), str(VENV_BIN), os.environ["PATH"]]),
            "HOME": str(self.bin_dir.parent),
            "FAKE_STATE": str(self.state_file),
            "FAKE_KUBE_STATE": str(self.state_file.with_name("kube.json")),
            "FAKE_CALLS": str(self.calls_file),
            **extra,
        }

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def secrets(self) -> dict[str, Any]:
        """The Secrets kubectl apply was given, by name (data still base64)."""
        path = self.state_file.with_name("kube.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def clear_calls(self) -> None:
        self.calls_file.unlink(missing_ok=True)

    def run(self, script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), *args], capture_output=True, text=True, env=self.env(**env), check=False, timeout=600
        )


def _write_executable(path: Path, source: str) -> None:
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


def make_fakes(tmp_path: Path) -> Fakes:
    """Fake aws, kubectl and eksctl first on PATH, their state and call log under `tmp_path`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_executable(bin_dir / "aws", FAKE_AWS)
    _write_executable(bin_dir / "kubectl", FAKE_KUBECTL)
    # eksctl is never needed by these scripts: a call would show up in the log and fail the run.
    _write_executable(bin_dir / "eksctl", FAKE_KUBECTL.replace('"kubectl"', '"eksctl"') + "\nsys.exit(3)\n")
    state = tmp_path / "state.json"
    state.write_text(json.dumps(_account()))
    return Fakes(bin_dir, state, tmp_path / "calls.jsonl")


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return make_fakes(tmp_path)


# What deploy/eks/bucket.sh leaves: a private bucket with versioning on.
VERSIONED_BUCKET = {
    "region": "us-west-2",
    "versioning": "Enabled",
    "public_access_block": dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    ),
}


def _account(**parts: Any) -> dict[str, Any]:
    """The fake account: no IAM entity, the versioned example bucket, and whatever `parts` replace."""
    return {"policies": {}, "roles": {}, "associations": {}, "buckets": {"example-bucket": VERSIONED_BUCKET}, **parts}


IAM_ENV = {"DATASET_BUCKET": "example-bucket", "DATASET_PREFIX": "datasets", "CLUSTER_NAME": "dataset-pipeline"}
MUTATING = ("create-", "delete-", "attach-", "detach-", "update-", "put-", "tag-", "untag-")


def _mutations(calls: list[dict[str, Any]]) -> list[list[str]]:
    return [call["argv"] for call in calls if call["argv"][0] == "aws" and call["argv"][2].startswith(MUTATING)]


def test_iam_create_makes_the_scoped_policy_role_and_association(fakes: Fakes) -> None:
    result = fakes.run(IAM_SCRIPT, "create", **IAM_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ROLE_ARN
    state = fakes.state()
    policy = state["policies"][POLICY_ARN]
    assert policy["versions"][0]["Document"] == render_policy("example-bucket", "datasets")
    assert OWNER_TAG in policy["tags"]
    role = state["roles"]["dataset-pipeline-s3"]
    assert role["attached"] == [POLICY_ARN]
    assert OWNER_TAG in role["tags"]
    statement = role["trust"]["Statement"][0]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    (association,) = state["associations"].values()
    assert (association["namespace"], association["serviceAccount"], association["roleArn"]) == (
        "dataset-pipeline",
        "dataset-pipeline-worker",
        ROLE_ARN,
    )
    assert association["tags"] == {OWNER_TAG["Key"]: OWNER_TAG["Value"]}
    assert not [call for call in fakes.calls() if call["argv"][0] != "aws"], "iam.sh calls only aws"


def test_iam_create_twice_changes_nothing_the_second_time(fakes: Fakes) -> None:
    assert fakes.run(IAM_SCRIPT, "create", **IAM_ENV).returncode == 0
    first = fakes.state()
    fakes.clear_calls()
    second = fakes.run(IAM_SCRIPT, "create", **IAM_ENV)
    assert second.returncode == 0, second.stderr
    assert fakes.state() == first
    mutations = _mutations(fakes.calls())
    # Only AWS's own idempotent calls repeat: the trust policy and the attachment.
    assert {argv[2] for argv in mutations} <= {"update-assume-role-policy", "attach-role-policy"}, mutations


def test_iam_create_updates_a_changed_policy_in_place(fakes: Fakes) -> None:
    assert fakes.run(IAM_SCRIPT, "create", **IAM_ENV).returncode == 0
    for prefix in ("team/datasets", "datasets"):
        result = fakes.run(IAM_SCRIPT, "create", **{**IAM_ENV, "DATASET_PREFIX": prefix})
        assert result.returncode == 0, result.stderr
    versions = fakes.state()["policies"][POLICY_ARN]["versions"]
    assert len(versions) == 2, "only the previous version is kept (AWS allows five)"
    (default,) = [version for version in versions if version["IsDefaultVersion"]]
    assert default["Document"] == render_policy("example-bucket", "datasets")


def test_iam_delete_removes_only_what_create_made(fakes: Fakes) -> None:
    foreign_association = {
        "associationId": "a-foreign",
        "clusterName": "dataset-pipeline",
        "namespace": "kube-system",
        "serviceAccount": "efs-csi-controller-sa",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/efs-csi",
        "tags": {},
    }
    foreign_role = {"arn": f"arn:aws:iam::{ACCOUNT}:role/efs-csi", "tags": [], "trust": {}, "attached": []}
    fakes.set_state(_account(roles={"efs-csi": foreign_role}, associations={"a-foreign": foreign_association}))
    assert fakes.run(IAM_SCRIPT, "create", **IAM_ENV).returncode == 0
    result = fakes.run(IAM_SCRIPT, "delete", **IAM_ENV)
    assert result.returncode == 0, result.stderr
    assert fakes.state() == _account(roles={"efs-csi": foreign_role}, associations={"a-foreign": foreign_association})
    again = fakes.run(IAM_SCRIPT, "delete", **IAM_ENV)
    assert again.returncode == 0, again.stderr
    assert "no role dataset-pipeline-s3" in again.stderr


def test_iam_leaves_an_untagged_role_of_the_same_name_alone(fakes: Fakes) -> None:
    someone_elses = {"arn": ROLE_ARN, "tags": [{"Key": "team", "Value": "other"}], "trust": {}, "attached": []}
    fakes.set_state(_account(roles={"dataset-pipeline-s3": someone_elses}))
    create = fakes.run(IAM_SCRIPT, "create", **IAM_ENV)
    assert create.returncode != 0
    assert "not created by this script" in create.stderr
    delete = fakes.run(IAM_SCRIPT, "delete", **IAM_ENV)
    assert delete.returncode == 0, delete.stderr
    assert fakes.state()["roles"]["dataset-pipeline-s3"] == someone_elses


@pytest.mark.parametrize("failing", ["iam attach-role-policy", "iam get-role", "eks list-pod-identity-associations"])
def test_iam_errors_stop_the_script(fakes: Fakes, failing: str) -> None:
    result = fakes.run(IAM_SCRIPT, "create", **IAM_ENV, FAKE_AWS_FAIL=failing)
    assert result.returncode != 0
    assert "AccessDenied" in result.stderr
    last = fakes.calls()[-1]["argv"]
    assert " ".join(last[1:3]) == failing, "nothing runs after the failing call"
    assert fakes.state()["associations"] == {}


def test_iam_refuses_to_run_without_a_bucket(fakes: Fakes) -> None:
    result = fakes.run(IAM_SCRIPT, "create", DATASET_PREFIX="datasets")
    assert result.returncode != 0
    assert "DATASET_BUCKET" in result.stderr
    assert fakes.calls() == []
    bad_prefix = fakes.run(IAM_SCRIPT, "create", DATASET_BUCKET="example-bucket", DATASET_PREFIX="/datasets/")
    assert bad_prefix.returncode != 0
    assert fakes.calls() == []


def test_iam_create_refuses_a_bucket_without_versioning(fakes: Fakes) -> None:
    """The role may overwrite objects, so it is granted only where every previous version is kept."""
    for versioning in (None, "Suspended"):
        fakes.set_state(_account(buckets={"example-bucket": {**VERSIONED_BUCKET, "versioning": versioning}}))
        fakes.clear_calls()
        result = fakes.run(IAM_SCRIPT, "create", **IAM_ENV)
        assert result.returncode != 0
        assert "deploy/eks/bucket.sh create" in result.stderr
        assert [call["argv"][1:3] for call in fakes.calls()] == [["s3api", "get-bucket-versioning"]]
        assert fakes.state() == _account(buckets={"example-bucket": {**VERSIONED_BUCKET, "versioning": versioning}})


def test_iam_delete_never_touches_the_bucket(fakes: Fakes) -> None:
    assert fakes.run(IAM_SCRIPT, "create", **IAM_ENV).returncode == 0
    fakes.clear_calls()
    assert fakes.run(IAM_SCRIPT, "delete", **IAM_ENV).returncode == 0
    assert not [call for call in fakes.calls() if call["argv"][1] == "s3api"]
    assert fakes.state()["buckets"] == {"example-bucket": VERSIONED_BUCKET}


# deploy/eks/bucket.sh ------------------------------------------------------------------------

BUCKET_ENV = {"DATASET_BUCKET": "example-bucket", "AWS_REGION": "eu-west-1"}


def test_bucket_create_makes_a_private_versioned_bucket(fakes: Fakes) -> None:
    fakes.set_state(_account(buckets={}))
    result = fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "s3://example-bucket"
    assert fakes.state()["buckets"] == {"example-bucket": {**VERSIONED_BUCKET, "region": "eu-west-1"}}
    versioning_calls = [call["argv"] for call in fakes.calls() if call["argv"][2] == "put-bucket-versioning"]
    enable = ["put-bucket-versioning", "--bucket", "example-bucket", "--versioning-configuration", "Status=Enabled"]
    assert versioning_calls == [["aws", "s3api", *enable]]
    assert not [call for call in fakes.calls() if call["argv"][0] != "aws"], "bucket.sh calls only aws"


def test_bucket_create_in_us_east_1_sends_no_location_constraint(fakes: Fakes) -> None:
    fakes.set_state(_account(buckets={}))
    result = fakes.run(BUCKET_SCRIPT, "create", **{**BUCKET_ENV, "AWS_REGION": "us-east-1"})
    assert result.returncode == 0, result.stderr
    assert fakes.state()["buckets"]["example-bucket"]["region"] == "us-east-1"


def test_bucket_create_twice_changes_nothing_the_second_time(fakes: Fakes) -> None:
    fakes.set_state(_account(buckets={}))
    assert fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV).returncode == 0
    first = fakes.state()
    fakes.clear_calls()
    second = fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV)
    assert second.returncode == 0, second.stderr
    assert fakes.state() == first
    assert _mutations(fakes.calls()) == []


def test_bucket_create_turns_suspended_versioning_back_on_and_closes_public_access(fakes: Fakes) -> None:
    loose = {**VERSIONED_BUCKET, "versioning": "Suspended", "public_access_block": None}
    fakes.set_state(_account(buckets={"example-bucket": loose}))
    result = fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV)
    assert result.returncode == 0, result.stderr
    assert fakes.state()["buckets"]["example-bucket"] == VERSIONED_BUCKET, "an existing bucket keeps its region"
    assert not [call for call in fakes.calls() if call["argv"][2] == "create-bucket"]


def test_bucket_of_another_account_stops_the_script(fakes: Fakes) -> None:
    fakes.set_state(_account(buckets={"example-bucket": {**VERSIONED_BUCKET, "owner": "444455556666"}}))
    result = fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV)
    assert result.returncode != 0
    assert "(403)" in result.stderr
    assert [call["argv"][2] for call in fakes.calls()] == ["head-bucket"]


@pytest.mark.parametrize("failing", ["s3api get-public-access-block", "s3api get-bucket-versioning"])
def test_bucket_errors_stop_the_script(fakes: Fakes, failing: str) -> None:
    result = fakes.run(BUCKET_SCRIPT, "create", **BUCKET_ENV, FAKE_AWS_FAIL=failing)
    assert result.returncode != 0
    assert "AccessDenied" in result.stderr
    assert " ".join(fakes.calls()[-1]["argv"][1:3]) == failing, "nothing runs after the failing call"


def test_bucket_refuses_to_run_without_a_bucket_name(fakes: Fakes) -> None:
    for env in ({}, {"DATASET_BUCKET": "Not_A_Bucket"}):
        result = fakes.run(BUCKET_SCRIPT, "create", **env)
        assert result.returncode != 0
        assert "DATASET_BUCKET" in result.stderr
    assert fakes.calls() == []


SECRET_VALUE = fake_secret("ghp")


def _argv_text(calls: list[dict[str, Any]]) -> str:
    return "\n".join(" ".join(call["argv"]) for call in calls)


def test_git_secret_reaches_kubectl_on_stdin_only(fakes: Fakes) -> None:
    result = fakes.run(GIT_SECRET_SCRIPT, GIT_SYNC_USERNAME="robot", GIT_SYNC_PASSWORD=SECRET_VALUE)
    assert result.returncode == 0, result.stderr
    calls = fakes.calls()
    assert [call["argv"][1] for call in calls] == ["create", "apply"]
    assert SECRET_VALUE not in _argv_text(calls)
    assert SECRET_VALUE not in result.stdout + result.stderr
    secret = json.loads(calls[1]["stdin"])
    keys = {"GIT_SYNC_USERNAME", "GIT_SYNC_PASSWORD", "GITSYNC_USERNAME", "GITSYNC_PASSWORD"}
    assert set(secret["data"]) == keys
    assert secret["metadata"]["name"] == "git-credentials"
    assert "--namespace" in calls[0]["argv"] and "dataset-pipeline" in calls[0]["argv"]
    assert SECRET_VALUE in calls[0]["stdin"], "the value goes in on stdin"


def test_git_secret_apply_failure_is_not_swallowed(fakes: Fakes) -> None:
    result = fakes.run(
        GIT_SECRET_SCRIPT, GIT_SYNC_USERNAME="robot", GIT_SYNC_PASSWORD=SECRET_VALUE, FAKE_KUBECTL_FAIL="apply"
    )
    assert result.returncode != 0
    assert "applied" not in result.stdout
    assert SECRET_VALUE not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"GIT_SYNC_USERNAME": "robot"},
        {"GIT_SYNC_PASSWORD": SECRET_VALUE},
        {"GIT_SYNC_USERNAME": "robot", "GIT_SYNC_PASSWORD": "a\nb"},
    ],
    ids=["no-password", "no-username", "multi-line"],
)
def test_git_secret_refuses_incomplete_credentials(fakes: Fakes, env: dict[str, str]) -> None:
    result = fakes.run(GIT_SECRET_SCRIPT, **env)
    assert result.returncode != 0
    assert fakes.calls() == []
    assert SECRET_VALUE not in result.stdout + result.stderr
