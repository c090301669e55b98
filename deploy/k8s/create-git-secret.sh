#!/usr/bin/env bash
# Creates or updates the `git-credentials` Secret that Airflow's git-sync, Airflow's worker pods
# and Dagster's pods read, from GIT_SYNC_USERNAME and GIT_SYNC_PASSWORD in the environment:
#
#   read -rs GIT_SYNC_PASSWORD && export GIT_SYNC_USERNAME=<user> GIT_SYNC_PASSWORD
#   deploy/k8s/create-git-secret.sh
#
# The Secret holds the v3 names (GIT_SYNC_USERNAME/PASSWORD, which the steps also read) and the
# v4 names git-sync 4 reads (GITSYNC_USERNAME/PASSWORD). The values go to kubectl on stdin only:
# never on a command line (visible in `ps`), in a file, or on this script's output.
# Environment: NAMESPACE [dataset-pipeline], SECRET_NAME [git-credentials].
set -euo pipefail

namespace=${NAMESPACE:-dataset-pipeline}
secret_name=${SECRET_NAME:-git-credentials}

fail() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

[[ -n ${GIT_SYNC_USERNAME:-} ]] || fail "set GIT_SYNC_USERNAME (the Git user the token belongs to)"
[[ -n ${GIT_SYNC_PASSWORD:-} ]] || fail "set GIT_SYNC_PASSWORD (a token that can read and push the repository)"
for value in "$GIT_SYNC_USERNAME" "$GIT_SYNC_PASSWORD"; do
  [[ $value != *$'\n'* && $value != *$'\r'* ]] || fail "GIT_SYNC_USERNAME and GIT_SYNC_PASSWORD must be one line each"
done

# printf is a shell builtin: the values never reach another process's argv. The manifest that
# `create --dry-run` prints goes straight into `apply`, so re-running updates the Secret;
# server-side apply keeps no second copy of the data in a last-applied annotation.
printf 'GIT_SYNC_USERNAME=%s\nGIT_SYNC_PASSWORD=%s\nGITSYNC_USERNAME=%s\nGITSYNC_PASSWORD=%s\n' \
  "$GIT_SYNC_USERNAME" "$GIT_SYNC_PASSWORD" "$GIT_SYNC_USERNAME" "$GIT_SYNC_PASSWORD" |
  kubectl create secret generic "$secret_name" --namespace "$namespace" \
    --from-env-file=/dev/stdin --dry-run=client --output=yaml |
  kubectl apply --server-side --field-manager=create-git-secret --namespace "$namespace" --filename=- >/dev/null
printf 'secret %s/%s applied (keys GIT_SYNC_USERNAME, GIT_SYNC_PASSWORD, GITSYNC_USERNAME, GITSYNC_PASSWORD)\n' \
  "$namespace" "$secret_name"
