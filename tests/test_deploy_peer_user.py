"""deploy/airflow/create-peer-user.sh: the Airflow user and role Dagster reads Airflow as, and the
Secret Dagster's code server gets the credentials from.

Fast tests run the script against the fake kubectl (whose `exec` runs the command here) and a fake
`airflow` that models the FAB CLI's roles and users; one slow test runs it against Airflow's real
CLI on a SQLite metadata database with this repository's DAG serialized, so the fake and the
commands the script uses are checked against the installed apache-airflow-providers-fab.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shared_tasks.project.names import NAMES
from tests.conftest import fake_secret, hermetic_environment
from tests.deploy_support import DEPLOY, PEER_SCRIPT, REPO_ROOT, VENV_BIN, load_documents
from tests.test_deploy_scripts import Fakes, make_fakes

SECRET = "airflow-peer-credentials"
ROLE = "DagsterPeer"
USER = "dagster-peer"
# What the sensor needs, all can_read, and Website, which FAB gives every role.
WANTED = {
    (resource, "can_read")
    for resource in (f"DAG:{NAMES.dag_id}", "DAG Runs", "Task Instances", "XComs", "Task Logs", "Assets", "Website")
}

# The FAB CLI commands the script uses, on a JSON model of roles and users. Listings print a
# warning line before their JSON, as the real CLI does; password prompts read stdin.
FAKE_AIRFLOW = r"""
import json, os, sys

argv = sys.argv[1:]
stdin_lines = iter(sys.stdin.read().splitlines()) if not sys.stdin.isatty() else iter(())
with open(os.environ["FAKE_CALLS"], "a") as log:
    log.write(json.dumps({"argv": ["airflow", *argv]}) + "\n")
path = os.environ["FAKE_AIRFLOW_STATE"]
state = json.load(open(path))


def option(name, many=False):
    values = argv[argv.index(name) + 1 :]
    values = values[: next((i for i, v in enumerate(values) if v.startswith("--")), len(values))]
    return values if many else values[0]


def fail(message):
    print(message)
    sys.exit(1)


def save():
    json.dump(state, open(path, "w"))


def password():
    first, second = next(stdin_lines), next(stdin_lines)
    if first != second:
        raise SystemExit("Passwords did not match")
    return first


roles, users = state["roles"], state["users"]
# Every command starts FAB's app, which syncs the roles: custom roles get Website.can_read.
for name in roles:
    if name not in ("Admin", "Op", "User", "Viewer", "Public") and ["Website", "can_read"] not in roles[name]:
        roles[name].append(["Website", "can_read"])
if argv[0] == "sync-perm":
    if state["dag_parsed"]:
        dag = state["dag_id"]
        state["resources"] = sorted(set(state["resources"]) | {f"DAG:{dag}", f"DAG Run:{dag}"})
elif argv[:2] == ["roles", "create"]:
    roles.setdefault(argv[2], [])
elif argv[:2] in (["roles", "add-perms"], ["roles", "del-perms"]):
    role, action = argv[2], option("--action")
    for resource in option("--resource", many=True):
        if resource not in state["resources"]:
            fail(f"Resource named '{resource}' does not exist")
        if argv[1] == "add-perms" and [resource, action] not in roles[role]:
            roles[role].append([resource, action])
        if argv[1] == "del-perms":
            roles[role].remove([resource, action])
elif argv[:2] == ["roles", "list"]:
    rows = {}
    for role, permissions in roles.items():
        for resource, action in permissions:
            rows.setdefault((role, resource), []).append(action)
    print("[warning  ] Using `httpx` with `starlette.testclient` is deprecated")
    print(json.dumps([{"name": r, "resource": s, "action": ",".join(sorted(a))} for (r, s), a in sorted(rows.items())]))
elif argv[:2] == ["users", "list"]:
    print("[warning  ] Using `httpx` with `starlette.testclient` is deprecated")
    print(json.dumps([{"username": name, "roles": user["roles"]} for name, user in users.items()]))
elif argv[:2] == ["users", "create"]:
    if option("--role") not in roles:
        raise SystemExit(f"{option('--role')} is not a valid role.")
    users[option("--username")] = {"roles": [option("--role")], "password": password()}
elif argv[:2] == ["users", "reset-password"]:
    users[option("--username")]["password"] = password()
elif argv[:2] == ["users", "add-role"]:
    users[option("--username")]["roles"].append(option("--role"))
elif argv[:2] == ["users", "remove-role"]:
    users[option("--username")]["roles"].remove(option("--role"))
else:
    raise SystemExit(f"fake airflow: unsupported {argv}")
save()
"""

BUILTIN_ROLES = {"Admin": [["DAGs", "can_edit"], ["Connections", "can_read"]], "Viewer": [["DAGs", "can_read"]]}
RESOURCES = ["Assets", "Connections", "DAG Runs", "DAGs", "Task Instances", "Task Logs", "Website", "XComs"]


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return make_fakes(tmp_path)


@pytest.fixture
def airflow(fakes: Fakes, tmp_path: Path) -> Path:
    executable = fakes.bin_dir / "airflow"
    executable.write_text(f"#!{sys.executable}\n{FAKE_AIRFLOW}")
    executable.chmod(0o755)
    state = tmp_path / "airflow.json"
    state.write_text(
        json.dumps(
            {"dag_parsed": True, "dag_id": NAMES.dag_id, "resources": RESOURCES, "roles": BUILTIN_ROLES, "users": {}}
        )
    )
    return state


def _run(fakes: Fakes, airflow_state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return fakes.run(PEER_SCRIPT, FAKE_AIRFLOW_STATE=str(airflow_state), **env)


def _secret_password(fakes: Fakes) -> str:
    data = fakes.secrets()[SECRET]["data"]
    assert base64.b64decode(data["PIPELINE_AIRFLOW_USERNAME"]).decode() == USER
    return base64.b64decode(data["PIPELINE_AIRFLOW_PASSWORD"]).decode()


def _argv_text(fakes: Fakes) -> str:
    return "\n".join(" ".join(call["argv"]) for call in fakes.calls())


def test_the_peer_user_gets_a_read_only_role_and_the_secrets_password(fakes: Fakes, airflow: Path) -> None:
    result = _run(fakes, airflow)
    assert result.returncode == 0, result.stderr
    password = _secret_password(fakes)
    state = json.loads(airflow.read_text())
    assert state["users"][USER] == {"roles": [ROLE], "password": password}
    assert {tuple(permission) for permission in state["roles"][ROLE]} == WANTED
    assert state["roles"]["Admin"] == BUILTIN_ROLES["Admin"], "other roles are left alone"
    assert password not in _argv_text(fakes), "never on a command line"
    assert password not in result.stdout + result.stderr, "never on the output"


def test_a_second_run_keeps_the_secret_and_converges(fakes: Fakes, airflow: Path) -> None:
    assert _run(fakes, airflow).returncode == 0
    password = _secret_password(fakes)
    # Someone widened the role and the user, and changed the password by hand.
    state = json.loads(airflow.read_text())
    state["roles"][ROLE].append(["Connections", "can_read"])
    state["roles"][ROLE].append(["DAG Runs", "can_create"])
    state["users"][USER] = {"roles": ["Admin", ROLE], "password": "changed"}
    airflow.write_text(json.dumps(state))
    fakes.clear_calls()
    again = _run(fakes, airflow)
    assert again.returncode == 0, again.stderr
    assert _secret_password(fakes) == password, "the Secret is made once"
    assert not [call for call in fakes.calls() if call["argv"][:2] == ["kubectl", "apply"]]
    state = json.loads(airflow.read_text())
    assert state["users"][USER] == {"roles": [ROLE], "password": password}
    assert {tuple(permission) for permission in state["roles"][ROLE]} == WANTED


def test_a_secret_made_by_hand_is_used(fakes: Fakes, airflow: Path) -> None:
    chosen = fake_secret("peer")
    data = {"PIPELINE_AIRFLOW_USERNAME": USER, "PIPELINE_AIRFLOW_PASSWORD": chosen}
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    fakes.state_file.with_name("kube.json").write_text(json.dumps({SECRET: {"data": encoded}}))
    result = _run(fakes, airflow)
    assert result.returncode == 0, result.stderr
    assert json.loads(airflow.read_text())["users"][USER]["password"] == chosen
    assert chosen not in _argv_text(fakes) and chosen not in result.stdout + result.stderr


def test_before_the_dag_is_parsed_it_says_so(fakes: Fakes, airflow: Path) -> None:
    state = json.loads(airflow.read_text())
    airflow.write_text(json.dumps({**state, "dag_parsed": False}))
    result = _run(fakes, airflow)
    assert result.returncode != 0
    assert "has Airflow parsed the DAG yet" in result.stderr
    assert USER not in json.loads(airflow.read_text())["users"]
    assert _secret_password(fakes) not in result.stdout + result.stderr


def test_a_secret_for_another_user_stops_it(fakes: Fakes, airflow: Path) -> None:
    encoded = {"PIPELINE_AIRFLOW_USERNAME": base64.b64encode(b"someone").decode()}
    fakes.state_file.with_name("kube.json").write_text(json.dumps({SECRET: {"data": encoded}}))
    result = _run(fakes, airflow)
    assert result.returncode != 0
    assert "is for user someone" in result.stderr
    assert not [call for call in fakes.calls() if call["argv"][:2] == ["kubectl", "exec"]]


def test_the_exec_targets_the_api_server_container(fakes: Fakes, airflow: Path) -> None:
    assert _run(fakes, airflow).returncode == 0
    (exec_call,) = [call["argv"] for call in fakes.calls() if call["argv"][:2] == ["kubectl", "exec"]]
    assert exec_call[1:8] == [
        "exec",
        "--stdin",
        "--namespace",
        "dataset-pipeline",
        "deploy/airflow-api-server",
        "--container",
        "api-server",
    ]


# Against Airflow's own CLI --------------------------------------------------------------------


def _airflow_environment(tmp_path: Path) -> dict[str, str]:
    """What Airflow's CLI runs with here: a SQLite database, the FAB auth manager, this repository's DAG."""
    (settings,) = load_documents(DEPLOY / "k8s" / "settings-configmap.yaml")
    home = tmp_path / "airflow-home"
    home.mkdir()
    return {
        **settings["data"],  # what the DAG processor parses the DAG with
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "airflow_dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def _airflow(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env={**hermetic_environment(Path(env["AIRFLOW_HOME"])), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def _fab_state(env: dict[str, str]) -> tuple[set[tuple[str, str]], list[str], str]:
    """The role's permissions, the user's roles and password hash, read from FAB's tables."""
    database = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        permissions = connection.execute(
            "select v.name, a.name from ab_role r join ab_permission_view_role pr on pr.role_id = r.id"
            " join ab_permission_view p on p.id = pr.permission_view_id join ab_view_menu v on v.id = p.view_menu_id"
            " join ab_permission a on a.id = p.permission_id where r.name = ?",
            (ROLE,),
        ).fetchall()
        roles = connection.execute(
            "select r.name from ab_user u join ab_user_role ur on ur.user_id = u.id join ab_role r on r.id = ur.role_id"
            " where u.username = ?",
            (USER,),
        ).fetchall()
        (password_hash,) = connection.execute("select password from ab_user where username = ?", (USER,)).fetchone()
    connection.close()
    return set(permissions), sorted(name for (name,) in roles), password_hash


@pytest.mark.slow
def test_the_script_drives_airflows_own_cli(fakes: Fakes, tmp_path: Path) -> None:
    from werkzeug.security import check_password_hash

    env = _airflow_environment(tmp_path)
    _airflow(env, "db", "migrate")
    _airflow(env, "dags", "reserialize")  # as the DAG processor does: the DAG's own permission can exist
    first = fakes.run(PEER_SCRIPT, **env)
    assert first.returncode == 0, first.stdout + first.stderr
    password = _secret_password(fakes)
    permissions, roles, password_hash = _fab_state(env)
    assert permissions == WANTED
    assert roles == [ROLE]
    assert check_password_hash(password_hash, password)
    assert password not in _argv_text(fakes) and password not in first.stdout + first.stderr

    # Widen the user by hand; a second run takes it back to the role alone and the Secret's password.
    _airflow(env, "users", "add-role", "--username", USER, "--role", "Admin")
    _airflow(env, "roles", "add-perms", ROLE, "--action", "can_edit", "--resource", "DAG Runs")
    second = fakes.run(PEER_SCRIPT, **env)
    assert second.returncode == 0, second.stdout + second.stderr
    permissions, roles, password_hash = _fab_state(env)
    assert (permissions, roles) == (WANTED, [ROLE])
    assert check_password_hash(password_hash, password)
