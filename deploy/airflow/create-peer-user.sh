#!/usr/bin/env bash
# The Airflow user Dagster reads Airflow's REST API as, and the Secret Dagster's code server gets
# its credentials from:
#
#   deploy/airflow/create-peer-user.sh     # idempotent: run it again and everything converges
#
# - Secret airflow-peer-credentials (PIPELINE_AIRFLOW_USERNAME, PIPELINE_AIRFLOW_PASSWORD): made once
#   with a generated password; an existing Secret is kept, and its password is the one set below.
# - Role DagsterPeer (Airflow's FAB auth manager) with exactly can_read on DAG:<DAG_ID> (that DAG
#   only), DAG Runs, Task Instances, XComs, Task Logs and Assets (assets and their events), plus
#   Website, which FAB gives every role. Any other permission of the role is removed.
# - User dagster-peer in that role only, its password set to the Secret's.
#
# The password travels from the Secret to Airflow on stdin only: never on a command line (visible
# in `ps`), in a file, or on this script's output. Airflow's CLI reads it at its password prompt.
# Run it once Airflow's DAG processor has parsed the DAG (the DAG's own permission exists from then:
# `airflow dags list` shows it).
# Environment (default in brackets): NAMESPACE [dataset-pipeline],
#   AIRFLOW_TARGET [deploy/airflow-api-server] (its container api-server runs the Airflow CLI),
#   SECRET_NAME [airflow-peer-credentials], PEER_USERNAME [dagster-peer], PEER_ROLE [DagsterPeer],
#   DAG_ID [dataset_pipeline].
set -euo pipefail

namespace=${NAMESPACE:-dataset-pipeline}
target=${AIRFLOW_TARGET:-deploy/airflow-api-server}
secret_name=${SECRET_NAME:-airflow-peer-credentials}
username=${PEER_USERNAME:-dagster-peer}
role=${PEER_ROLE:-DagsterPeer}
dag_id=${DAG_ID:-dataset_pipeline}
# What the sensor reads: the DAG's runs, their task instances, XComs and logs, and assets with their
# events. Every permission is can_read.
readonly resources=("DAG:$dag_id" "DAG Runs" "Task Instances" "XComs" "Task Logs" "Assets")

fail() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

[[ $username =~ ^[A-Za-z0-9._-]+$ ]] || fail "PEER_USERNAME must be a plain user name: $username"
[[ $dag_id =~ ^[A-Za-z0-9._-]+$ ]] || fail "DAG_ID must be a DAG id: $dag_id"

# The Secret's value of KEY, or nothing when the Secret does not exist.
secret_value() {
  local encoded
  encoded=$(kubectl get secret "$secret_name" --namespace "$namespace" --ignore-not-found \
    --output "jsonpath={.data.$1}")
  if [[ -n $encoded ]]; then
    base64 --decode <<<"$encoded"
  fi
}

# The Secret holds the password Airflow gets; one made here is never replaced by a later run.
ensure_secret() {
  local existing_user
  existing_user=$(secret_value PIPELINE_AIRFLOW_USERNAME)
  if [[ -n $existing_user ]]; then
    [[ $existing_user == "$username" ]] ||
      fail "secret $namespace/$secret_name is for user $existing_user, not $username"
    password=$(secret_value PIPELINE_AIRFLOW_PASSWORD)
    [[ -n $password ]] || fail "secret $namespace/$secret_name has no PIPELINE_AIRFLOW_PASSWORD"
    printf 'secret %s/%s exists\n' "$namespace" "$secret_name"
    return
  fi
  password=$(openssl rand -hex 24)
  # printf is a shell builtin: the values reach kubectl on stdin only.
  printf 'PIPELINE_AIRFLOW_USERNAME=%s\nPIPELINE_AIRFLOW_PASSWORD=%s\n' "$username" "$password" |
    kubectl create secret generic "$secret_name" --namespace "$namespace" \
      --from-env-file=/dev/stdin --dry-run=client --output=yaml |
    kubectl apply --server-side --field-manager=create-peer-user --namespace "$namespace" --filename=- >/dev/null
  printf 'secret %s/%s created (keys PIPELINE_AIRFLOW_USERNAME, PIPELINE_AIRFLOW_PASSWORD)\n' \
    "$namespace" "$secret_name"
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
password=""
ensure_secret
printf '%s\n' "$password" |
  kubectl exec --stdin --namespace "$namespace" "$target" --container api-server -- \
    bash -c "$(cat "$script_dir/peer-user-in-airflow.sh")" peer-user-in-airflow "$role" "$username" "${resources[@]}"
printf 'airflow user %s has role %s only, with can_read on: %s\n' "$username" "$role" "${resources[*]}"
