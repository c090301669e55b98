"""deploy/k8s/networkpolicies.yaml, checked as data: every flow the pipeline needs is admitted, and
nothing else is.

A small evaluator of Kubernetes NetworkPolicy semantics (pod and namespace selectors with
matchLabels and matchExpressions, ipBlock, ports, policy types; a connection needs the sender's
egress and the receiver's ingress) runs over a catalogue of the pods the charts create, labelled as
the charts' templates label them. The kubelet's probes and `kubectl port-forward` are not pod
traffic and are outside NetworkPolicy, so they are not modelled.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from shared_tasks.project.names import NAMES
from tests.deploy_support import DEPLOY, EKS_GUIDE, load_documents, load_yaml

NAMESPACE = "dataset-pipeline"
POLICY_FILE = DEPLOY / "k8s" / "networkpolicies.yaml"


@dataclass(frozen=True)
class Pod:
    labels: Mapping[str, str]
    namespace: str = NAMESPACE


@dataclass(frozen=True)
class Address:
    """Something outside the cluster's pod network: S3, GitHub, the node's link-local services."""

    ip: str


Endpoint = Pod | Address
Namespaces = Mapping[str, Mapping[str, str]]


# The evaluator -------------------------------------------------------------------------------


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A label selector: every matchLabels pair and every matchExpressions requirement holds."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for requirement in selector.get("matchExpressions", []):
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values", [])
        holds = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not holds:
            return False
    return True


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint, namespaces: Namespaces) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, Address):
            return False  # ipBlock is for addresses outside the pod network
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        excepted = any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
        return address in ipaddress.ip_network(block["cidr"]) and not excepted
    if isinstance(other, Address):
        return False
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = other.namespace == policy_namespace  # a bare podSelector means this namespace
    else:
        in_namespace = selects(namespace_selector, namespaces[other.namespace])
    return in_namespace and selects(peer.get("podSelector", {}), other.labels)


def port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True  # no ports: every port
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        assert isinstance(entry["port"], int), "numbered ports only: a named port would need the pod's spec"
        if entry["port"] <= port <= entry.get("endPort", entry["port"]):
            return True
    return False


def policy_types(spec: Mapping[str, Any]) -> list[str]:
    return list(spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])])


def allows(
    policies: list[dict[str, Any]],
    namespaces: Namespaces,
    direction: str,
    pod: Pod,
    other: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    """Whether `pod` may take this connection in (Ingress) from `other`, or send it out (Egress) to it."""
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == pod.namespace
        and direction in policy_types(policy["spec"])
        and selects(policy["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # a pod no policy isolates accepts and sends anything
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        (
            not rule.get(peers_key)
            or any(peer_matches(peer, pod.namespace, other, namespaces) for peer in rule[peers_key])
        )
        and port_matches(rule.get("ports"), port, protocol)
        for policy in selecting
        for rule in policy["spec"].get(rules_key, [])
    )


def connects(
    policies: list[dict[str, Any]], namespaces: Namespaces, src: Pod, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    sent = allows(policies, namespaces, "Egress", src, dst, port, protocol)
    received = not isinstance(dst, Pod) or allows(policies, namespaces, "Ingress", dst, src, port, protocol)
    return sent and received


# The pods, as the charts label them ----------------------------------------------------------


def _airflow(component: str) -> Pod:
    # apache/airflow chart/templates/*/*-deployment.yaml, jobs/migrate-database-job.yaml and
    # files/pod-template-file.kubernetes-helm-yaml (worker pods); the KubernetesExecutor adds its
    # own labels (dag_id, task_id, ...) next to the template's.
    return Pod({"tier": "airflow", "component": component, "release": "airflow"})


def _dagster_chart(component: str, deployment: str) -> Pod:
    # dagster-io/dagster helm/dagster/templates/helpers/_deployment-webserver.tpl,
    # deployment-daemon.yaml, charts/dagster-user-deployments/templates/deployment-user.yaml
    labels = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": "dagster"}
    return Pod({**labels, "component": component, "deployment": deployment})


def _dagster_job(component: str) -> Pod:
    """A run or step pod, labelled by dagster-k8s itself (K8sRunLauncher, k8s_job_executor)."""
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job

    config = DagsterK8sJobConfig(job_image="worker:0", dagster_home="/opt/dagster/dagster_home")
    labels = {"dagster/job": NAMES.dagster_job, "dagster/run-id": "0b5f7e"}
    job = construct_dagster_k8s_job(config, ["dagster"], "dagster-run-0b5f7e", component=component, labels=labels)
    return Pod(job.spec.template.metadata.labels)


PODS: dict[str, Pod] = {
    "airflow-scheduler": _airflow("scheduler"),
    "airflow-dag-processor": _airflow("dag-processor"),
    "airflow-triggerer": _airflow("triggerer"),
    "airflow-api-server": _airflow("api-server"),
    "airflow-worker": _airflow("worker"),
    "airflow-migrations": _airflow("run-airflow-migrations"),
    # Bitnami postgresql 13 (the Airflow chart's subchart): common.labels.standard + component.
    "airflow-postgresql": Pod(
        {
            "app.kubernetes.io/name": "postgresql",
            "app.kubernetes.io/instance": "airflow",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/component": "primary",
        }
    ),
    "dagster-webserver": _dagster_chart("dagster-webserver", "dagster-webserver"),
    "dagster-daemon": _dagster_chart("dagster-daemon", "daemon"),
    "dagster-user-code": _dagster_chart("user-deployments", "dataset-pipeline"),
    "dagster-run": _dagster_job("run_worker"),
    "dagster-step": _dagster_job("step_worker"),
    # Bitnami postgresql 8.1 (the Dagster chart's subchart), from before Bitnami's standard labels.
    "dagster-postgresql": Pod({"app": "postgresql", "release": "dagster", "role": "master", "heritage": "Helm"}),
    # oauth2-proxy/manifests helm/oauth2-proxy/templates/deployment.yaml and _helpers.tpl.
    "oauth2-proxy": Pod(
        {
            "app": "oauth2-proxy",
            "app.kubernetes.io/name": "oauth2-proxy",
            "app.kubernetes.io/instance": "oauth2-proxy",
            "app.kubernetes.io/component": "authentication-proxy",
            "app.kubernetes.io/part-of": "oauth2-proxy",
        }
    ),
    # Anything else started in the namespace, e.g. `kubectl run debug --image=...`.
    "debug-pod": Pod({"run": "debug"}),
    # A pod elsewhere that carries an Airflow worker's labels: namespaces are not interchangeable.
    "lookalike-elsewhere": Pod({"tier": "airflow", "component": "worker", "release": "airflow"}, namespace="other"),
}

# What each pod listens on (the containers' ports).
LISTENS: dict[str, tuple[int, ...]] = {
    "airflow-api-server": (8080,),
    "airflow-postgresql": (5432,),
    "dagster-webserver": (80,),
    "dagster-user-code": (3030,),
    "dagster-postgresql": (5432,),
    "oauth2-proxy": (4180,),
}

# Every connection between the namespace's pods that the pipeline makes, and nothing more.
EXPECTED_FLOWS: set[tuple[str, str, int]] = {
    # Airflow's API server: a task's execution API calls; the Dagster sensor reading Airflow's runs.
    ("airflow-worker", "airflow-api-server", 8080),
    ("dagster-user-code", "airflow-api-server", 8080),
    # Dagster's UI and GraphQL: people through the proxy; Airflow launching and awaiting a cut-over step.
    ("oauth2-proxy", "dagster-webserver", 80),
    ("airflow-worker", "dagster-webserver", 80),
    ("airflow-triggerer", "dagster-webserver", 80),
    # Dagster's code server: definitions, sensors and schedules.
    ("dagster-webserver", "dagster-user-code", 3030),
    ("dagster-daemon", "dagster-user-code", 3030),
    # Each orchestrator's database, from its own components.
    *{
        (source, "airflow-postgresql", 5432)
        for source in (
            "airflow-scheduler",
            "airflow-api-server",
            "airflow-dag-processor",
            "airflow-triggerer",
            "airflow-migrations",
        )
    },
    *{
        (source, "dagster-postgresql", 5432)
        for source in ("dagster-webserver", "dagster-daemon", "dagster-user-code", "dagster-run", "dagster-step")
    },
}

REFUSED_EXAMPLES = [
    ("dagster-run", "airflow-postgresql", 5432),
    ("airflow-worker", "airflow-postgresql", 5432),
    ("dagster-run", "airflow-api-server", 8080),
    ("dagster-webserver", "airflow-api-server", 8080),
    ("oauth2-proxy", "airflow-api-server", 8080),
    ("dagster-run", "dagster-webserver", 80),
    ("dagster-user-code", "dagster-webserver", 80),
    ("airflow-scheduler", "dagster-webserver", 80),
    ("airflow-api-server", "dagster-webserver", 80),
    ("debug-pod", "dagster-webserver", 80),
    ("lookalike-elsewhere", "dagster-webserver", 80),
    ("oauth2-proxy", "dagster-webserver", 3000),
    ("dagster-run", "dagster-user-code", 3030),
    ("airflow-worker", "dagster-user-code", 3030),
    ("airflow-scheduler", "dagster-postgresql", 5432),
    ("airflow-worker", "oauth2-proxy", 4180),
]

KUBE_DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
S3 = Address("52.92.16.2")
GITHUB = Address("140.82.112.3")
POD_IDENTITY_AGENT = Address("169.254.170.23")
INSTANCE_METADATA = Address("169.254.169.254")


def policies() -> list[dict[str, Any]]:
    return load_documents(POLICY_FILE)


def namespaces() -> dict[str, dict[str, str]]:
    """Namespace labels, with the kubernetes.io/metadata.name label the API server sets on each."""
    ours = load_yaml(DEPLOY / "k8s" / "namespace.yaml")["metadata"]
    return {
        name: {**labels, "kubernetes.io/metadata.name": name}
        for name, labels in [(ours["name"], ours["labels"]), ("kube-system", {}), ("other", {})]
    }


def admitted(src: str, dst: str, port: int) -> bool:
    return connects(policies(), namespaces(), PODS[src], PODS[dst], port)


# The policies --------------------------------------------------------------------------------


def test_the_namespace_admits_exactly_the_expected_flows() -> None:
    every_flow = {
        (src, dst, port)
        for src, dst in itertools.permutations(PODS, 2)
        for port in LISTENS.get(dst, ())
        if admitted(src, dst, port)
    }
    assert every_flow - EXPECTED_FLOWS == set(), "admitted but not needed"
    assert EXPECTED_FLOWS - every_flow == set(), "needed but refused"


@pytest.mark.parametrize(("src", "dst", "port"), REFUSED_EXAMPLES, ids=lambda part: str(part))
def test_a_flow_nobody_needs_is_refused(src: str, dst: str, port: int) -> None:
    assert not admitted(src, dst, port)


def test_dagsters_webserver_takes_connections_only_from_the_proxy_and_airflows_triggerer_and_workers() -> None:
    sources = {src for src in PODS if src != "dagster-webserver" and admitted(src, "dagster-webserver", 80)}
    assert sources == {"oauth2-proxy", "airflow-triggerer", "airflow-worker"}


def test_every_pod_reaches_dns_https_and_the_pod_identity_agent_and_nothing_else_outside() -> None:
    rules, spaces = policies(), namespaces()
    for name, pod in PODS.items():
        if pod.namespace != NAMESPACE:
            continue
        assert connects(rules, spaces, pod, KUBE_DNS, 53, "UDP"), name
        assert connects(rules, spaces, pod, KUBE_DNS, 53, "TCP"), name
        assert connects(rules, spaces, pod, POD_IDENTITY_AGENT, 80), name
        assert connects(rules, spaces, pod, S3, 443) and connects(rules, spaces, pod, GITHUB, 443), name
        assert not connects(rules, spaces, pod, INSTANCE_METADATA, 80), f"{name} must not get the node's role"
        assert not connects(rules, spaces, pod, GITHUB, 22), f"{name}: no SSH"
        assert not connects(rules, spaces, pod, S3, 80), f"{name}: no plain HTTP out"
        assert not connects(rules, spaces, pod, Pod({"app": "anything"}, namespace="other"), 8080), name


def test_every_policy_selects_a_pod_of_the_catalogue() -> None:
    """A selector that matches nothing is a typo: its pods would fall back to the default deny."""
    for policy in policies():
        selector = policy["spec"]["podSelector"]
        assert any(selects(selector, pod.labels) for pod in PODS.values()), policy["metadata"]["name"]


def test_every_pod_of_the_namespace_is_isolated_for_ingress() -> None:
    isolating = [
        policy
        for policy in policies()
        if policy["spec"]["podSelector"] == {} and policy["spec"].get("policyTypes") == ["Ingress"]
    ]
    assert len(isolating) == 1 and "ingress" not in isolating[0]["spec"], "one default deny, with no rule"


def test_the_releases_the_policies_assume_are_the_guides() -> None:
    installs = dict(re.findall(r"helm upgrade --install (\S+) (\S+/\S+)", EKS_GUIDE.read_text(encoding="utf-8")))
    assert installs == {
        "airflow": "apache-airflow/airflow",
        "dagster": "dagster/dagster",
        "oauth2-proxy": "oauth2-proxy/oauth2-proxy",
    }


def test_the_vpc_cni_enforces_the_policies() -> None:
    """Without the VPC CNI's network policy agent, EKS accepts NetworkPolicies and enforces none."""
    import json

    config = load_yaml(DEPLOY / "eks" / "cluster.yaml")
    (vpc_cni,) = [addon for addon in config["addons"] if addon["name"] == "vpc-cni"]
    assert json.loads(vpc_cni["configurationValues"])["enableNetworkPolicy"] == "true"


# The evaluator, on small cases of its own ----------------------------------------------------

TOY_NAMESPACES = {"a": {"kubernetes.io/metadata.name": "a", "team": "x"}, "b": {"kubernetes.io/metadata.name": "b"}}


def _policy(spec: dict[str, Any], namespace: str = "a") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_selectors() -> None:
    labels = {"tier": "db", "env": "prod"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"tier": "db"}}, labels)
    assert not selects({"matchLabels": {"tier": "db", "env": "dev"}}, labels)
    assert selects({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["x"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)


def test_evaluator_isolation_peers_and_ports() -> None:
    db, app, stranger = Pod({"tier": "db"}, "a"), Pod({"tier": "app"}, "a"), Pod({"tier": "app"}, "b")
    deny = _policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    allow_app = _policy(
        {
            "podSelector": {"matchLabels": {"tier": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"tier": "app"}}}], "ports": [{"port": 5432}]}],
        }
    )
    assert connects([], TOY_NAMESPACES, app, db, 5432), "no policy, no isolation"
    assert not connects([deny], TOY_NAMESPACES, app, db, 5432)
    assert connects([deny, allow_app], TOY_NAMESPACES, app, db, 5432)
    assert not connects([deny, allow_app], TOY_NAMESPACES, app, db, 5433)
    assert not connects([deny, allow_app], TOY_NAMESPACES, app, db, 5432, "UDP")
    assert not connects([deny, allow_app], TOY_NAMESPACES, stranger, db, 5432), "a bare podSelector is one namespace"
    from_b = _policy({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 1}]}]})
    assert connects([from_b], TOY_NAMESPACES, stranger, db, 1)
    ranged = _policy({"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8010}]}]})
    assert connects([ranged], TOY_NAMESPACES, stranger, db, 8005) and not connects(
        [ranged], TOY_NAMESPACES, app, db, 8011
    )


def test_evaluator_egress_and_ip_blocks() -> None:
    app = Pod({"tier": "app"}, "a")
    out = _policy(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
        }
    )
    assert connects([out], TOY_NAMESPACES, app, Address("10.2.3.4"), 443)
    assert not connects([out], TOY_NAMESPACES, app, Address("10.1.3.4"), 443)
    assert not connects([out], TOY_NAMESPACES, app, Address("192.0.2.1"), 443)
    assert not connects([out], TOY_NAMESPACES, app, Pod({}, "a"), 443), "an ipBlock does not name pods"
    ingress_only = _policy({"podSelector": {}, "ingress": [{}]})
    assert policy_types(ingress_only["spec"]) == ["Ingress"]
    assert connects([ingress_only], TOY_NAMESPACES, app, Address("192.0.2.1"), 25), "egress stays open"
