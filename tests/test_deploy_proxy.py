"""Dagster's UI only through oauth2-proxy: deploy/oauth2-proxy/values.yaml, its config file, and
that nothing else publishes Dagster's webserver.

The oauth2-proxy chart has no values.schema.json; chart-reference.json next to the values holds what
the chart reads and what oauth2-proxy's config file may hold, derived from their sources.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

from tests.deploy_support import (
    DAGSTER_VALUES,
    EKS_GUIDE,
    PROXY_REFERENCE,
    PROXY_VALUES,
    REPO_ROOT,
    kubernetes_object_errors,
    load_yaml,
)

NAMESPACE = "dataset-pipeline"
DAGSTER_RELEASE = "dagster"


def reference() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PROXY_REFERENCE.read_text(encoding="utf-8"))
    return loaded


def proxy_values() -> dict[str, Any]:
    values: dict[str, Any] = load_yaml(PROXY_VALUES)
    return values


def proxy_config(values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return tomllib.loads((values or proxy_values())["config"]["configFile"])


def leaf_paths(node: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, f"{path}.")
        else:
            yield path


def unknown_values(values: Mapping[str, Any]) -> list[str]:
    """Values the chart does not read: neither one of its paths nor inside one it passes on whole."""
    known, free_form = set(reference()["value_paths"]), reference()["free_form_paths"]
    return [
        path
        for path in leaf_paths(values)
        if path not in known and not any(path.startswith(f"{whole}.") for whole in free_form)
    ]


def dagster_webserver_url() -> str:
    """The webserver's Service inside the cluster, from the Dagster values (<release>-<nameOverride>)."""
    webserver = load_yaml(DAGSTER_VALUES)["dagsterWebserver"]
    name = f"{DAGSTER_RELEASE}-{webserver['nameOverride']}"
    return f"http://{name}.{NAMESPACE}.svc.cluster.local:{webserver['service']['port']}"


def guide() -> str:
    return EKS_GUIDE.read_text(encoding="utf-8")


# The values and the config file, against what the chart and oauth2-proxy accept ----------------


def test_every_value_is_one_the_chart_reads() -> None:
    assert unknown_values(proxy_values()) == []


def test_a_misspelt_value_is_caught() -> None:
    values = proxy_values()
    values["podDisruptionBudgt"] = {"enabled": False}
    values["service"]["portNumbr"] = 80
    assert unknown_values(values) == ["service.portNumbr", "podDisruptionBudgt.enabled"]


def test_the_config_file_holds_only_oauth2_proxy_options() -> None:
    options = set(reference()["config_options"])
    assert set(proxy_config()) <= options, set(proxy_config()) - options
    assert "cookie_samsite" not in options and "cookie_samesite" in options, "the list can catch a typo"


def test_the_kubernetes_parts_of_the_values_are_valid() -> None:
    values = proxy_values()
    assert kubernetes_object_errors("io.k8s.api.core.v1.ResourceRequirements", values["resources"]) == []
    assert kubernetes_object_errors("io.k8s.api.core.v1.PodSecurityContext", values["podSecurityContext"]) == []
    assert kubernetes_object_errors("io.k8s.api.core.v1.PodSecurityContext", {"runAsNonRot": True}) != []


def test_the_versions_agree() -> None:
    chart, app = reference()["chart"], reference()["app"]
    header = PROXY_VALUES.read_text(encoding="utf-8")
    install = re.search(r"helm upgrade --install oauth2-proxy oauth2-proxy/oauth2-proxy --version (\S+)", guide())
    assert install and install.group(1) == chart["version"]
    assert f"--version {chart['version']}" in header
    assert proxy_values()["image"]["tag"] == app["tag"]


# What the proxy does ---------------------------------------------------------------------------


def test_the_proxy_signs_people_in_with_github_and_forwards_to_dagsters_webserver() -> None:
    config = proxy_config()
    assert config["provider"] == "github"
    assert config["github_users"], "only the listed GitHub users may sign in"
    assert config["upstreams"] == [f"{dagster_webserver_url()}/"]
    forward = re.search(r"port-forward svc/oauth2-proxy (\d+):(\d+)", guide())
    assert forward, "the guide reaches the proxy by port-forward"
    assert config["redirect_url"] == f"http://localhost:{forward.group(1)}/oauth2/callback"
    assert int(forward.group(2)) == proxy_values()["service"]["portNumber"]


def test_the_session_cookie_stays_off_cross_site_requests() -> None:
    config = proxy_config()
    assert (config["cookie_secure"], config["cookie_httponly"], config["cookie_samesite"]) == (True, True, "lax")
    assert config.get("cookie_csrf_samesite", "") in ("", "lax"), "the login callback needs a Lax CSRF cookie"
    assert "cookie_domains" not in config, "a host-only cookie: no sibling host receives it"


def test_dagster_gets_nothing_from_the_sign_in() -> None:
    config = proxy_config()
    assert not config["pass_access_token"] and not config["pass_authorization_header"]
    assert not config["pass_basic_auth"]


def test_the_proxy_secret_is_made_in_the_guide_with_the_keys_the_chart_reads() -> None:
    """The chart's deployment reads client-id, client-secret and cookie-secret from config.existingSecret."""
    name = proxy_values()["config"]["existingSecret"]
    command = re.search(rf"create secret generic {name} ((?:.*\\\n)*.*)", guide())
    assert command, f"the guide creates the Secret {name}"
    assert set(re.findall(r"--from-file=([\w-]+)=", command.group(1))) == {
        "client-id",
        "client-secret",
        "cookie-secret",
    }


# Nothing else publishes the webserver -----------------------------------------------------------


def test_nothing_publishes_dagsters_webserver() -> None:
    dagster = load_yaml(DAGSTER_VALUES)
    assert dagster["dagsterWebserver"]["service"]["type"] == "ClusterIP"
    assert dagster["ingress"]["enabled"] is False
    proxy = proxy_values()
    assert proxy["service"]["type"] == "ClusterIP"
    assert proxy["ingress"]["enabled"] is False and proxy["gatewayApi"]["enabled"] is False


def test_no_guide_or_readme_port_forwards_to_dagsters_webserver() -> None:
    for path in (EKS_GUIDE, REPO_ROOT / "deploy" / "README.md", REPO_ROOT / "README.md"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"port-forward\s+\S*dagster-webserver", text), path
        assert "dagster-dagster-webserver 3000" not in text, path
