#!/usr/bin/env bash
# The AWS side of "pods reach S3 without keys": one IAM policy scoped to the DVC remote's prefix,
# one role that EKS Pod Identity may assume, and a Pod Identity association for each service
# account of the orchestrators' worker pods.
#
#   deploy/eks/iam.sh create    # idempotent: a second run changes nothing
#   deploy/eks/iam.sh delete    # removes only what `create` made (tagged below)
#
# Environment (default in brackets):
#   DATASET_BUCKET    bucket of the DVC remote (required)
#   DATASET_PREFIX    the DVC remote's prefix inside the bucket [datasets]
#   CLUSTER_NAME      [dataset-pipeline]          AWS_REGION    [us-west-2]
#   NAMESPACE         [dataset-pipeline]
#   SERVICE_ACCOUNTS  space-separated [dataset-pipeline-worker] (Airflow's workers and Dagster's
#                     user code, run and step pods share it: see deploy/README.md)
#   ROLE_NAME         [dataset-pipeline-s3]       POLICY_NAME   [dataset-pipeline-s3-dataset]
# `create` grants PutObject only on a versioned bucket (deploy/eks/bucket.sh turns versioning on),
# so an object written again always keeps its previous version; `delete` never touches the bucket.
# Needs the AWS CLI v2 and python3. Every AWS error stops the script with AWS's message; only "does
# not exist" answers to look-ups are expected.
set -euo pipefail

readonly OWNER_TAG_KEY="dataset-pipeline/created-by"
readonly OWNER_TAG_VALUE="deploy-eks-iam-sh"
readonly NOT_FOUND_PATTERN='NoSuchEntity|ResourceNotFoundException'

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster=${CLUSTER_NAME:-dataset-pipeline}
region=${AWS_REGION:-us-west-2}
namespace=${NAMESPACE:-dataset-pipeline}
service_accounts=${SERVICE_ACCOUNTS:-dataset-pipeline-worker}
role_name=${ROLE_NAME:-dataset-pipeline-s3}
policy_name=${POLICY_NAME:-dataset-pipeline-s3-dataset}
prefix=${DATASET_PREFIX:-datasets}
export AWS_PAGER=""

work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT
errors="$work_dir/errors"

log() { printf '%s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# lookup ARGS...: runs `aws ARGS` to see whether an entity exists. Returns 1 when AWS answers
# that it does not; any other failure stops the script with AWS's message.
lookup() {
  local status=0
  aws "$@" >/dev/null 2>"$errors" || status=$?
  if ((status == 0)); then
    return 0
  fi
  if grep -Eq "$NOT_FOUND_PATTERN" "$errors"; then
    return 1
  fi
  cat "$errors" >&2
  exit "$status"
}

check_inputs() {
  [[ -n ${DATASET_BUCKET:-} ]] || die "set DATASET_BUCKET to the bucket of the DVC remote"
  [[ $DATASET_BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "DATASET_BUCKET is not a bucket name: $DATASET_BUCKET"
  [[ $prefix =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ ]] || die "DATASET_PREFIX must be a key prefix without leading or trailing '/': $prefix"
  command -v python3 >/dev/null || die "python3 is required"
}

# The role may write objects (PutObject), so the bucket must keep every previous version first.
require_versioned_bucket() {
  local status
  status=$(aws s3api get-bucket-versioning --bucket "$DATASET_BUCKET" --query Status --output text)
  [[ $status == Enabled ]] ||
    die "versioning of s3://$DATASET_BUCKET is not on (${status}): run deploy/eks/bucket.sh create first"
}

render_policy() {
  sed -e "s|\${DATASET_BUCKET}|${DATASET_BUCKET}|g" -e "s|\${DATASET_PREFIX}|${prefix}|g" \
    "$script_dir/policy.json" >"$work_dir/policy.json"
}

render_trust_policy() {
  local account=$1
  cat >"$work_dir/trust.json" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Service": "pods.eks.amazonaws.com"},
      "Action": ["sts:AssumeRole", "sts:TagSession"],
      "Condition": {
        "StringEquals": {"aws:SourceAccount": "${account}"},
        "ArnEquals": {"aws:SourceArn": "arn:aws:eks:${region}:${account}:cluster/${cluster}"}
      }
    }
  ]
}
EOF
}

owner_of_policy() {
  aws iam list-policy-tags --policy-arn "$1" --query "Tags[?Key=='${OWNER_TAG_KEY}'].Value | [0]" --output text
}

owner_of_role() {
  aws iam list-role-tags --role-name "$1" --query "Tags[?Key=='${OWNER_TAG_KEY}'].Value | [0]" --output text
}

association_of() {
  aws eks list-pod-identity-associations --cluster-name "$cluster" --region "$region" \
    --namespace "$namespace" --service-account "$1" --query 'associations[0].associationId' --output text
}

# Same JSON, same text: sorted keys, no whitespace.
canonical_json() {
  python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True, separators=(",", ":")))'
}

delete_old_policy_versions() {
  local policy_arn=$1 versions version
  versions=$(aws iam list-policy-versions --policy-arn "$policy_arn" \
    --query 'Versions[?!IsDefaultVersion].VersionId' --output text)
  for version in $versions; do
    aws iam delete-policy-version --policy-arn "$policy_arn" --version-id "$version"
  done
}

# Replaces the policy's document when it differs from the rendered one (older versions are ours:
# the policy carries this script's tag).
update_policy_document() {
  local policy_arn=$1 default_version current wanted
  default_version=$(aws iam get-policy --policy-arn "$policy_arn" --query 'Policy.DefaultVersionId' --output text)
  current=$(aws iam get-policy-version --policy-arn "$policy_arn" --version-id "$default_version" \
    --query 'PolicyVersion.Document' --output json | canonical_json)
  wanted=$(canonical_json <"$work_dir/policy.json")
  if [[ $current == "$wanted" ]]; then
    log "policy $policy_name is up to date"
    return
  fi
  delete_old_policy_versions "$policy_arn"
  aws iam create-policy-version --policy-arn "$policy_arn" --policy-document "file://$work_dir/policy.json" \
    --set-as-default >/dev/null
  log "policy $policy_name updated"
}

ensure_policy() {
  local policy_arn=$1 owner
  if lookup iam get-policy --policy-arn "$policy_arn"; then
    owner=$(owner_of_policy "$policy_arn")
    [[ $owner == "$OWNER_TAG_VALUE" ]] || die "policy $policy_arn exists but was not created by this script"
    update_policy_document "$policy_arn"
  else
    aws iam create-policy --policy-name "$policy_name" --policy-document "file://$work_dir/policy.json" \
      --description "dataset-pipeline: read and add objects under s3://${DATASET_BUCKET}/${prefix}/" \
      --tags "Key=${OWNER_TAG_KEY},Value=${OWNER_TAG_VALUE}" >/dev/null
    log "policy $policy_name created"
  fi
}

ensure_role() {
  local owner
  if lookup iam get-role --role-name "$role_name"; then
    owner=$(owner_of_role "$role_name")
    [[ $owner == "$OWNER_TAG_VALUE" ]] || die "role $role_name exists but was not created by this script"
    aws iam update-assume-role-policy --role-name "$role_name" --policy-document "file://$work_dir/trust.json"
    log "role $role_name exists"
  else
    aws iam create-role --role-name "$role_name" --assume-role-policy-document "file://$work_dir/trust.json" \
      --description "dataset-pipeline worker pods (EKS Pod Identity)" \
      --tags "Key=${OWNER_TAG_KEY},Value=${OWNER_TAG_VALUE}" >/dev/null
    log "role $role_name created"
  fi
}

ensure_association() {
  local service_account=$1 role_arn=$2 association associated_role
  association=$(association_of "$service_account")
  if [[ -z $association || $association == None ]]; then
    aws eks create-pod-identity-association --cluster-name "$cluster" --region "$region" \
      --namespace "$namespace" --service-account "$service_account" --role-arn "$role_arn" \
      --tags "${OWNER_TAG_KEY}=${OWNER_TAG_VALUE}" >/dev/null
    log "pod identity association created for $namespace/$service_account"
    return
  fi
  associated_role=$(aws eks describe-pod-identity-association --cluster-name "$cluster" --region "$region" \
    --association-id "$association" --query 'association.roleArn' --output text)
  [[ $associated_role == "$role_arn" ]] ||
    die "$namespace/$service_account is already associated with $associated_role"
  log "pod identity association for $namespace/$service_account exists"
}

create() {
  local account policy_arn role_arn service_account
  check_inputs
  require_versioned_bucket
  account=$(aws sts get-caller-identity --query Account --output text)
  policy_arn="arn:aws:iam::${account}:policy/${policy_name}"
  role_arn="arn:aws:iam::${account}:role/${role_name}"
  render_policy
  render_trust_policy "$account"
  ensure_policy "$policy_arn"
  ensure_role
  aws iam attach-role-policy --role-name "$role_name" --policy-arn "$policy_arn"
  for service_account in $service_accounts; do
    ensure_association "$service_account" "$role_arn"
  done
  printf '%s\n' "$role_arn"
}

delete_association() {
  local service_account=$1 association owner
  association=$(association_of "$service_account")
  if [[ -z $association || $association == None ]]; then
    log "no pod identity association for $namespace/$service_account"
    return
  fi
  owner=$(aws eks describe-pod-identity-association --cluster-name "$cluster" --region "$region" \
    --association-id "$association" --query "association.tags.\"${OWNER_TAG_KEY}\"" --output text)
  if [[ $owner != "$OWNER_TAG_VALUE" ]]; then
    log "keeping pod identity association $association: not created by this script"
    return
  fi
  aws eks delete-pod-identity-association --cluster-name "$cluster" --region "$region" \
    --association-id "$association" >/dev/null
  log "pod identity association for $namespace/$service_account deleted"
}

delete_role() {
  local policy_arn=$1 owner attached
  if ! lookup iam get-role --role-name "$role_name"; then
    log "no role $role_name"
    return
  fi
  owner=$(owner_of_role "$role_name")
  if [[ $owner != "$OWNER_TAG_VALUE" ]]; then
    log "keeping role $role_name: not created by this script"
    return
  fi
  attached=$(aws iam list-attached-role-policies --role-name "$role_name" \
    --query "AttachedPolicies[?PolicyArn=='${policy_arn}'].PolicyArn | [0]" --output text)
  if [[ $attached == "$policy_arn" ]]; then
    aws iam detach-role-policy --role-name "$role_name" --policy-arn "$policy_arn"
  fi
  aws iam delete-role --role-name "$role_name"
  log "role $role_name deleted"
}

delete_policy() {
  local policy_arn=$1 owner
  if ! lookup iam get-policy --policy-arn "$policy_arn"; then
    log "no policy $policy_name"
    return
  fi
  owner=$(owner_of_policy "$policy_arn")
  if [[ $owner != "$OWNER_TAG_VALUE" ]]; then
    log "keeping policy $policy_arn: not created by this script"
    return
  fi
  delete_old_policy_versions "$policy_arn"
  aws iam delete-policy --policy-arn "$policy_arn"
  log "policy $policy_name deleted"
}

delete() {
  local account policy_arn service_account
  account=$(aws sts get-caller-identity --query Account --output text)
  policy_arn="arn:aws:iam::${account}:policy/${policy_name}"
  for service_account in $service_accounts; do
    delete_association "$service_account"
  done
  delete_role "$policy_arn"
  delete_policy "$policy_arn"
}

case "${1:-}" in
  create) create ;;
  delete) delete ;;
  *)
    log "usage: $0 create|delete"
    exit 2
    ;;
esac
