#!/usr/bin/env bash
# The DVC remote's bucket: created once, never public, and versioned, so an object that is written
# again (a PutObject on a key that exists) keeps its previous version and every version of the
# dataset stays recoverable.
#
#   deploy/eks/bucket.sh create    # idempotent: a second run changes nothing
#
# There is no `delete`: the bucket holds every version of the dataset (docs/eks.md, "Cleanup",
# says how to remove it by hand). Nothing here ever suspends versioning.
#
# Environment (default in brackets):
#   DATASET_BUCKET    the bucket of the DVC remote (required)
#   AWS_REGION        [us-west-2]
# Needs the AWS CLI v2. Every AWS error stops the script with AWS's message; only "does not exist"
# answers to look-ups are expected.
set -euo pipefail

readonly NOT_FOUND_PATTERN='\(404\)|NoSuchBucket|NoSuchPublicAccessBlockConfiguration'
readonly PUBLIC_ACCESS_BLOCK='BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true'

region=${AWS_REGION:-us-west-2}
export AWS_PAGER=""

work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT
errors="$work_dir/errors"

log() { printf '%s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# lookup ARGS...: runs `aws ARGS`, its answer on stdout. Returns 1 when AWS answers that the thing
# does not exist; any other failure prints AWS's message and returns 2 or more, which stops the
# script (callers in a command substitution pass it on with `stop_on_error`).
lookup() {
  local status=0
  aws "$@" 2>"$errors" || status=$?
  if ((status == 0)); then
    return 0
  fi
  if grep -Eq "$NOT_FOUND_PATTERN" "$errors"; then
    return 1
  fi
  cat "$errors" >&2
  return $((status > 1 ? status : 2))
}

stop_on_error() {
  local status=$1
  ((status <= 1)) || exit "$status"
}

check_inputs() {
  [[ -n ${DATASET_BUCKET:-} ]] || die "set DATASET_BUCKET to the bucket of the DVC remote"
  [[ $DATASET_BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "DATASET_BUCKET is not a bucket name: $DATASET_BUCKET"
}

ensure_bucket() {
  local status=0
  # head-bucket answers 403 for a bucket of another account: that stops the script.
  lookup s3api head-bucket --bucket "$DATASET_BUCKET" >/dev/null || status=$?
  stop_on_error "$status"
  if ((status == 0)); then
    log "bucket $DATASET_BUCKET exists"
    return
  fi
  if [[ $region == us-east-1 ]]; then
    aws s3api create-bucket --bucket "$DATASET_BUCKET" --region "$region" >/dev/null
  else
    aws s3api create-bucket --bucket "$DATASET_BUCKET" --region "$region" \
      --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
  log "bucket $DATASET_BUCKET created in $region"
}

ensure_public_access_block() {
  local current="" status=0
  current=$(lookup s3api get-public-access-block --bucket "$DATASET_BUCKET" --output text --query \
    'PublicAccessBlockConfiguration.[BlockPublicAcls,IgnorePublicAcls,BlockPublicPolicy,RestrictPublicBuckets]') ||
    status=$?
  stop_on_error "$status"
  if [[ $current == $'True\tTrue\tTrue\tTrue' ]]; then
    log "public access to $DATASET_BUCKET is blocked"
    return
  fi
  aws s3api put-public-access-block --bucket "$DATASET_BUCKET" \
    --public-access-block-configuration "$PUBLIC_ACCESS_BLOCK"
  log "public access to $DATASET_BUCKET blocked"
}

# Versioning once on can be suspended but never removed; this only ever turns it on.
ensure_versioning() {
  local status
  status=$(aws s3api get-bucket-versioning --bucket "$DATASET_BUCKET" --query Status --output text)
  if [[ $status == Enabled ]]; then
    log "versioning of $DATASET_BUCKET is on"
    return
  fi
  aws s3api put-bucket-versioning --bucket "$DATASET_BUCKET" --versioning-configuration Status=Enabled
  log "versioning of $DATASET_BUCKET turned on (was: $status)"
}

create() {
  check_inputs
  ensure_bucket
  ensure_public_access_block
  ensure_versioning
  printf 's3://%s\n' "$DATASET_BUCKET"
}

case "${1:-}" in
  create) create ;;
  *)
    log "usage: $0 create"
    exit 2
    ;;
esac
