#!/usr/bin/env bash
# Runs inside Airflow's api-server container, sent there by create-peer-user.sh (not run directly):
#   bash -c "$(cat peer-user-in-airflow.sh)" peer-user-in-airflow ROLE USER RESOURCE... <<<"$password"
# Makes ROLE hold exactly can_read on each RESOURCE (plus Website, which FAB gives every role) and
# USER exist in ROLE only, with the password read from the first line of stdin. Each step is one
# command of Airflow's CLI (FAB auth manager); a step's output is shown only when it fails, and a
# password prompt never echoes what it reads from a pipe.
set -euo pipefail

IFS= read -r password
role=$1 user=$2
shift 2

# Runs one command with no stdin (inside a `while read` loop it must not eat the loop's input).
run() {
  local out
  if ! out=$("$@" </dev/null 2>&1); then
    printf '%s\n' "$out" >&2
    printf 'error: %s failed\n' "$*" >&2
    exit 1
  fi
}

# Answers the CLI's two password prompts (password, confirmation) from the pipe.
run_with_password() {
  local out
  if ! out=$(printf '%s\n%s\n' "$password" "$password" | "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    printf 'error: %s failed\n' "$*" >&2
    exit 1
  fi
}

# The JSON a listing prints (Airflow may print warnings on stdout before it).
json_of() { "$@" </dev/null 2>/dev/null | grep '^\[' | tail -n 1; }

read -r -d '' extra_permissions <<'PY' || true
import json, sys
role, wanted = sys.argv[1], set(sys.argv[2:]) | {"Website"}
for row in json.load(sys.stdin):
    if row["name"] != role:
        continue
    for action in row["action"].split(","):
        if action != "can_read" or row["resource"] not in wanted:
            print(f"{row['resource']}\t{action}")
PY

read -r -d '' roles_of_user <<'PY' || true
import json, sys
found = [row for row in json.load(sys.stdin) if row["username"] == sys.argv[1]]
print("\n".join(found[0]["roles"]) if found else "-")
PY

# Per-DAG resources (DAG:<dag_id>) exist once the DAG processor has parsed the DAG.
run airflow sync-perm --include-dags
run airflow roles create "$role"
if ! out=$(airflow roles add-perms "$role" --action can_read --resource "$@" </dev/null 2>&1); then
  printf '%s\n' "$out" >&2
  printf 'error: could not grant can_read on %s; has Airflow parsed the DAG yet (airflow dags list)?\n' "$*" >&2
  exit 1
fi
extras=$(json_of airflow roles list --permission --output json | python3 -c "$extra_permissions" "$role" "$@")
while IFS=$'\t' read -r resource action; do
  if [[ -n $resource ]]; then
    run airflow roles del-perms "$role" --resource "$resource" --action "$action"
  fi
done <<<"$extras"

roles=$(json_of airflow users list --output json | python3 -c "$roles_of_user" "$user")
if [[ $roles == "-" ]]; then
  run_with_password airflow users create --username "$user" --role "$role" \
    --email "$user@dataset-pipeline.invalid" --firstname Dagster --lastname Peer
  exit 0
fi
run_with_password airflow users reset-password --username "$user"
grep -qxF "$role" <<<"$roles" || run airflow users add-role --username "$user" --role "$role"
while IFS= read -r other; do
  if [[ $other != "$role" ]]; then
    run airflow users remove-role --username "$user" --role "$other"
  fi
done <<<"$roles"
