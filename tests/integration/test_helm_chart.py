"""The Helm chart: lint, install into the local control plane, least privilege, uninstall."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from dataproduct_operator import __version__
from dataproduct_operator.cli import catalog as catalog_command
from dataproduct_operator.cli import run as run_command
from dataproduct_operator.constants import DEFAULT_ADMISSION_SLOTS, admission_slot_names
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.manifests.argocd import HealthCheck, build_health_checks
from dataproduct_operator.manifests.chart import LUA_HEADER
from dataproduct_operator.manifests.dashboard import build_dashboard
from dataproduct_operator.manifests.policies import STARTER_POLICIES
from dataproduct_operator.manifests.rbac import (
    CATALOG_REVIEW_RULES,
    build_catalog_review_rules,
    build_catalog_rules,
    build_cluster_role_rules,
    build_namespace_writer_rules,
)
from tests.clusters import (
    CHART,
    OPERATOR_NAMESPACE,
    RELEASE,
    HelmRunner,
    install_release,
    operator_allowed,
)
from tests.helpers import wait_for
from tests.products import PRODUCTS, delete_if_present, example

CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dataproducts.datamesh.dev"
CLUSTER_ROLE = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{RELEASE}"


def test_chart_lints_clean(helm: HelmRunner) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_values_outside_the_schema_are_refused_with_their_path(helm: HelmRunner) -> None:
    result = helm(
        "template", "x", str(CHART),
        "--set", "image.pullPolicy=Sometimes",
        "--set", "watchNamespaces[0]=Not_A_Namespace",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "/image/pullPolicy" in result.stderr
    assert "/watchNamespaces/0" in result.stderr
    zero = helm("template", "x", str(CHART), "--set", "concurrentReconciles=0", check=False)
    assert zero.returncode != 0
    assert "/concurrentReconciles" in zero.stderr


def test_operator_values_reach_the_command_line_the_cli_accepts(helm: HelmRunner) -> None:
    rendered = helm(
        "template", "x", str(CHART),
        "--set", "driftIntervalSeconds=60", "--set", "concurrentReconciles=4",
        "--set", "watchNamespaces={sales,crm}", "--set", "logLevel=debug",
        "--set", "metrics.port=9100", "--set", "livenessPort=9101",
        "--set", "catalog.port=9102", "--set", "catalog.showDomainProducts=true",
        "--set", "catalog.publicUrl=https://catalog.example.com",
        "--set", "policies.maxEnforced=5",
        "--set", "pipelines.nodeSelector.node-pool=data",
        "--set", "pipelines.tolerations[0].key=node-pool",
        "--set", "pipelines.tolerations[0].value=data",
        "--set", "pipelines.tolerations[0].effect=NoSchedule",
        "--set", "pipelines.tolerations[1].key=example.com/gpu",
    ).stdout  # fmt: skip
    (deployment,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "run"
    context = run_command.make_context("run", args[1:])
    assert context.params["drift_interval"] == 60
    assert context.params["concurrent_reconciles"] == 4
    assert context.params["namespaces"] == ("sales", "crm")
    assert context.params["verbose"] is True
    assert (context.params["metrics_port"], context.params["liveness_port"]) == (9100, 9101)
    assert context.params["catalog_port"] == 9102
    assert context.params["show_domain_products"] is True
    assert context.params["public_url"] == "https://catalog.example.com"
    assert context.params["admission_policy_slots"] == 5
    assert context.params["pipeline_node_selector"] == ("node-pool=data",)
    assert context.params["runner_image"] == (
        "ghcr.io/dataproduct-operator/dataproduct-operator-runner:" + __version__
    )
    assert context.params["pipeline_tolerations"] == (
        "node-pool=data:NoSchedule",
        "example.com/gpu",
    )


def _rendered(helm: HelmRunner, *values: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(helm("template", "x", str(CHART), *values).stdout) if d]


def _named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (document,) = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


def test_the_operator_role_grants_the_pool_of_admission_policy_names_the_values_size(
    helm: HelmRunner,
) -> None:
    for values, slots in (((), DEFAULT_ADMISSION_SLOTS), (("--set", "policies.maxEnforced=3"), 3)):
        role = _named(_rendered(helm, *values), "ClusterRole", "x-dataproduct-operator")
        assert role["rules"] == build_cluster_role_rules(slots)
        (named,) = [r for r in role["rules"] if "validatingadmissionpolicies" in r["resources"]
                    and "resourceNames" in r]  # fmt: skip
        assert named["resourceNames"] == list(admission_slot_names(slots))
    for bad in ("0", "257"):
        result = helm(
            "template", "x", str(CHART), "--set", f"policies.maxEnforced={bad}", check=False
        )
        assert result.returncode != 0 and "/policies/maxEnforced" in result.stderr


def test_catalog_is_served_by_the_operator_behind_its_own_service_by_default(
    helm: HelmRunner,
) -> None:
    documents = _rendered(helm)
    operator = _named(documents, "Deployment", "x-dataproduct-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert "--catalog-port=8090" in container["args"]
    assert {"name": "catalog", "containerPort": 8090, "protocol": "TCP"} in container["ports"]
    service = _named(documents, "Service", "x-dataproduct-operator-catalog")
    assert service["spec"]["selector"] == operator["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "catalog"
    assert not [
        d
        for d in documents
        if d["metadata"]["name"].endswith("-catalog")
        and d["kind"] in ("Deployment", "ServiceAccount", "ClusterRole")
    ]
    disabled = _rendered(helm, "--set", "catalog.enabled=false")
    assert not [d for d in disabled if d["metadata"]["name"].endswith("-catalog")]
    operator = _named(disabled, "Deployment", "x-dataproduct-operator")
    assert not [
        a for a in operator["spec"]["template"]["spec"]["containers"][0]["args"] if "catalog" in a
    ]


def test_standalone_catalog_runs_as_its_own_read_only_identity(helm: HelmRunner) -> None:
    documents = _rendered(
        helm, "--set", "catalog.standalone=true", "--set", "catalog.replicas=2",
        "--set", "watchNamespaces={sales}", "--set", "catalog.publicUrl=https://c.example.com",
    )  # fmt: skip
    operator = _named(documents, "Deployment", "x-dataproduct-operator")
    assert not [
        a for a in operator["spec"]["template"]["spec"]["containers"][0]["args"] if "catalog" in a
    ]
    catalog = _named(documents, "Deployment", "x-dataproduct-operator-catalog")
    pod = catalog["spec"]["template"]["spec"]
    assert catalog["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == "x-dataproduct-operator-catalog"
    args = pod["containers"][0]["args"]
    assert args[0] == "catalog"
    context = catalog_command.make_context("catalog", args[1:])
    assert (context.params["port"], context.params["host"]) == (8090, "0.0.0.0")  # noqa: S104
    assert context.params["namespaces"] == ("sales",)
    assert context.params["public_url"] == "https://c.example.com"
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    selector = catalog["spec"]["selector"]["matchLabels"]
    assert selector != operator["spec"]["selector"]["matchLabels"]
    # Neither Deployment's selector picks the other's pods.
    operator_pods = operator["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= operator_pods.items()
    assert (
        not operator["spec"]["selector"]["matchLabels"].items()
        <= catalog["spec"]["template"]["metadata"]["labels"].items()
    )
    service = _named(documents, "Service", "x-dataproduct-operator-catalog")
    assert service["spec"]["selector"] == selector
    role = _named(documents, "ClusterRole", "x-dataproduct-operator-catalog")
    assert role["rules"] == build_catalog_rules()
    # It writes nothing: reads, and the reviews of --auth kubernetes (which store nothing).
    reviews = [rule.to_wire() for rule in CATALOG_REVIEW_RULES]
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"} or rule in reviews, rule
    assert all(r["verbs"] == ["create"] and r["resources"][0].endswith("reviews") for r in reviews)
    binding = _named(documents, "ClusterRoleBinding", "x-dataproduct-operator-catalog")
    assert binding["subjects"][0]["name"] == "x-dataproduct-operator-catalog"


def test_catalog_auth_reaches_whichever_process_serves_it_with_the_reviews_it_needs(
    helm: HelmRunner,
) -> None:
    def args(documents: list[dict[str, Any]], name: str) -> list[str]:
        deployment = _named(documents, "Deployment", name)
        return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])

    reviews = "x-dataproduct-operator-catalog-reviews"
    embedded = _rendered(helm)  # the default: the operator serves it, with kubernetes auth
    context = run_command.make_context("run", args(embedded, "x-dataproduct-operator")[1:])
    assert context.params["catalog_auth"] == "kubernetes"
    assert _named(embedded, "ClusterRole", reviews)["rules"] == build_catalog_review_rules()
    binding = _named(embedded, "ClusterRoleBinding", reviews)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "x-dataproduct-operator", "namespace": "default"}
    ]
    anonymous = _rendered(helm, "--set", "catalog.auth=none")
    context = run_command.make_context("run", args(anonymous, "x-dataproduct-operator")[1:])
    assert context.params["catalog_auth"] == "none"
    assert not [d for d in anonymous if d["metadata"]["name"] == reviews]
    standalone = _rendered(helm, "--set", "catalog.standalone=true")
    catalog_args = args(standalone, "x-dataproduct-operator-catalog")
    assert catalog_command.make_context("catalog", catalog_args[1:]).params["auth"] == "kubernetes"
    assert not [d for d in standalone if d["metadata"]["name"] == reviews]
    role = _named(standalone, "ClusterRole", "x-dataproduct-operator-catalog")
    assert all(rule in role["rules"] for rule in build_catalog_review_rules())
    refused = helm("template", "x", str(CHART), "--set", "catalog.auth=basic", check=False)
    assert refused.returncode != 0 and "/catalog/auth" in refused.stderr


def _ingress_ports(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]] | None]:
    """Port name -> the peers its rule admits (None: every source)."""
    return {
        port["port"]: rule.get("from")
        for rule in policy["spec"]["ingress"]
        for port in rule["ports"]
    }


def test_network_policy_admits_metrics_from_the_monitoring_namespace_only(
    helm: HelmRunner, kube: BlockingClient, namespace: str
) -> None:
    documents = _rendered(helm, "--namespace", namespace)
    policy = _named(documents, "NetworkPolicy", "x-dataproduct-operator")
    operator = _named(documents, "Deployment", "x-dataproduct-operator")
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == (operator["spec"]["selector"]["matchLabels"])
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    ports = _ingress_ports(policy)
    assert ports == {
        "metrics": [
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": ["monitoring"],
                        }
                    ]
                }
            }
        ],
        "health": None,  # kubelet probes
        "catalog": None,  # the catalog checks its callers (catalog.auth: kubernetes)
    }
    # Every port the pod serves is named in the policy: nothing else reaches it.
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"] for p in container["ports"]} == set(ports)
    # The API server takes it as it is.
    kube.create(
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies?dryRun=All", policy
    )

    peers = '{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}'
    standalone = _rendered(
        helm, "--namespace", namespace, "--set", "catalog.standalone=true",
        "--set", "networkPolicy.metricsNamespaces={prometheus,ops}",
        "--set-json", f"networkPolicy.catalogFrom=[{peers}]",
    )  # fmt: skip
    operator_ports = _ingress_ports(_named(standalone, "NetworkPolicy", "x-dataproduct-operator"))
    assert set(operator_ports) == {"metrics", "health"}
    metrics_from = operator_ports["metrics"]
    assert metrics_from is not None
    assert metrics_from[0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "prometheus",
        "ops",
    ]
    catalog_policy = _named(standalone, "NetworkPolicy", "x-dataproduct-operator-catalog")
    catalog = _named(standalone, "Deployment", "x-dataproduct-operator-catalog")
    assert (
        catalog_policy["spec"]["podSelector"]["matchLabels"]
        == (catalog["spec"]["selector"]["matchLabels"])
    )
    assert _ingress_ports(catalog_policy) == {
        "catalog": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
        ]
    }
    kube.create(
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies?dryRun=All",
        catalog_policy,
    )
    disabled = _rendered(helm, "--set", "networkPolicy.enabled=false")
    assert not [d for d in disabled if d["kind"] == "NetworkPolicy"]


def test_optional_service_monitor_scrapes_the_metrics_port(helm: HelmRunner) -> None:
    def kinds(*values: str) -> dict[str, dict[str, Any]]:
        rendered = helm("template", "x", str(CHART), *values).stdout
        return {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}

    assert "ServiceMonitor" not in kinds()
    monitor = kinds("--set", "metrics.serviceMonitor.enabled=true")["ServiceMonitor"]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    without_crds = kinds("--set", "crds.enabled=false")
    assert "CustomResourceDefinition" not in without_crds
    assert "Deployment" in without_crds


def lua_file(check: HealthCheck) -> str:
    """A health check as the chart's file holds it (the ConfigMap drops its last newline)."""
    source = "operator/dataproduct_operator/manifests/argocd.py"
    return (LUA_HEADER.format(source=source) + check.script).rstrip("\n")


def test_dashboard_and_argocd_health_checks_ship_as_configmaps_that_values_turn_off(
    helm: HelmRunner,
) -> None:
    def config_maps(*values: str) -> dict[str, dict[str, Any]]:
        rendered = helm("template", "x", str(CHART), *values).stdout
        documents = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ConfigMap"]
        return {d["metadata"]["name"]: d for d in documents}

    shipped = config_maps("--set", "grafana.dashboard.annotations.grafana_folder=Data")
    dashboard = shipped["x-dataproduct-operator-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Data"}
    # The legends' {{...}} reach Grafana as they are, untouched by Helm's templating.
    assert json.loads(dashboard["data"]["dataproduct-operator-data.json"]) == build_dashboard()
    checks = shipped["x-dataproduct-operator-argocd-health-checks"]["data"]
    assert checks == {check.key: lua_file(check) for check in build_health_checks()}
    quiet = config_maps(
        "--set", "grafana.dashboard.enabled=false", "--set", "argocd.healthChecks.enabled=false"
    )
    assert not {name for name in quiet if "dashboard" in name or "argocd" in name}


def test_starter_policies_are_off_by_default_and_created_after_the_crds_when_on(
    helm: HelmRunner, kube: BlockingClient, crds: None
) -> None:
    def policies(*values: str) -> list[dict[str, Any]]:
        rendered = helm("template", "x", str(CHART), *values).stdout
        return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "MeshPolicy"]

    assert policies() == []
    starters = policies("--set", "policies.enabled=true")
    assert [p["metadata"]["name"] for p in starters] == [
        p["metadata"]["name"] for p in STARTER_POLICIES
    ]
    for policy in starters:
        hooks = policy["metadata"]["annotations"]["helm.sh/hook"]
        assert hooks == "post-install,post-upgrade", "the MeshPolicy kind exists only after install"
        kube.create("/apis/datamesh.dev/v1alpha1/meshpolicies?dryRun=All", policy)


def test_release_runs_two_leader_elected_replicas_under_pod_security_restricted(
    operator_release: str, kube: BlockingClient
) -> None:
    namespace = kube.get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = kube.get(f"/apis/apps/v1/namespaces/{OPERATOR_NAMESPACE}/deployments/{RELEASE}")
    assert deployment["status"]["availableReplicas"] == 2
    budget = kube.get(
        f"/apis/policy/v1/namespaces/{OPERATOR_NAMESPACE}/poddisruptionbudgets/{RELEASE}"
    )
    assert budget["spec"]["minAvailable"] == 1
    pods = kube.get(
        f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods",
        query={"labelSelector": f"app.kubernetes.io/instance={RELEASE}"},
    )["items"]
    assert [p["spec"]["serviceAccountName"] for p in pods] == [RELEASE, RELEASE]
    container = pods[0]["spec"]["containers"][0]
    assert f"--leader-election-namespace={OPERATOR_NAMESPACE}" in container["args"]
    assert f"--lease-name={RELEASE}" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "health",
        "scheme": "HTTP",
    }
    assert {p["name"] for p in container["ports"]} == {"metrics", "health", "catalog"}


def test_operator_role_is_the_generated_rules_without_wildcards(
    operator_release: str, kube: BlockingClient
) -> None:
    rules = kube.get(CLUSTER_ROLE)["rules"]
    assert rules == build_cluster_role_rules()
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        assert not {"escalate", "impersonate"} & set(rule["verbs"])
        if "bind" in rule["verbs"]:  # only the domain owner teams' and its writer role, by name
            assert rule["resourceNames"] == [
                "datamesh-domain-editor",
                "datamesh-operator-namespace-writer",
            ]
    writer = kube.get(
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/datamesh-operator-namespace-writer"
    )
    assert writer["rules"] == build_namespace_writer_rules()
    bindings = kube.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")["items"]
    # Never bound cluster-wide: the operator binds it in domain namespaces only.
    assert not [
        b["metadata"]["name"]
        for b in bindings
        if b["roleRef"]["name"] == "datamesh-operator-namespace-writer"
    ]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # Outside the namespaces of DataDomains: reads only (and creating a RoleBinding,
        # which admission allows only in a domain's namespace)
        (("", "persistentvolumeclaims", "list"), True),
        (("", "persistentvolumeclaims", "create"), False),
        (("batch", "jobs", "create"), False),
        (("", "configmaps", "update"), False),
        (("rbac.authorization.k8s.io", "rolebindings", "create"), True),
        (("rbac.authorization.k8s.io", "rolebindings", "delete"), False),
        (("rbac.authorization.k8s.io", "roles", "create"), False),
        (("datamesh.dev", "dataproducts", "patch"), True),
        (("datamesh.dev", "dataproducts", "create"), False),
        # get, update and patch only where it is bound, a domain's namespace, because the
        # owner Roles grant them on their products' Secrets (the API server lets the operator
        # grant only what it holds); outside, nothing; never list, watch, create or delete.
        (("", "secrets", "get"), False),
        (("", "secrets", "update"), False),
        (("", "secrets", "list"), False),
        (("", "secrets", "watch"), False),
        (("", "secrets", "create"), False),
        (("", "secrets", "delete"), False),
        (("", "pods", "create"), False),
        (("rbac.authorization.k8s.io", "clusterrolebindings", "create"), False),
        (("rbac.authorization.k8s.io", "roles", "escalate"), False),
        (("", "namespaces", "delete"), False),
        (("", "persistentvolumes", "patch"), True),  # retained volumes (cluster-scoped)
        (("", "persistentvolumes", "delete"), False),
        (("", "persistentvolumes", "create"), False),
        (("rbac.authorization.k8s.io", "clusterroles", "bind", "datamesh-domain-editor"), True),
        (("rbac.authorization.k8s.io", "clusterroles", "bind", "admin"), False),
        (
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                "bind",
                "datamesh-operator-namespace-writer",
            ),
            True,
        ),
        # Admission policies: the pool's names only, and create only with a name (apply).
        (("admissionregistration.k8s.io", "validatingadmissionpolicies", "list"), True),
        (
            (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies",
                "create",
                "datamesh-policy-000",
            ),
            True,
        ),
        (
            (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                "delete",
                "datamesh-policy-031",
            ),
            True,
        ),
        (("admissionregistration.k8s.io", "validatingadmissionpolicies", "create"), False),
        (
            (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies",
                "delete",
                "datamesh-operator-rolebindings",
            ),
            False,
        ),
        (
            (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicybindings",
                "patch",
                "datamesh-policy-032",
            ),
            False,
        ),
        (("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "create"), False),
    ],
)
def test_operator_identity_has_only_what_it_needs(
    operator_release: str, kube: BlockingClient, attributes: tuple[str, ...], expected: bool
) -> None:
    assert operator_allowed(kube, "some-domain", attributes) is expected


def test_uninstall_keeps_the_crd_and_every_product_and_reinstall_adopts_them(
    operator_release: str, helm: HelmRunner, kube: BlockingClient, namespace: str
) -> None:
    kube.create(PRODUCTS.format(namespace=namespace), example(namespace))
    assert kube.get(CRD)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    result = helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")
    assert "kept due to the resource policy" in result.stdout + result.stderr
    wait_for(lambda: not kube.exists(CLUSTER_ROLE), description="the ClusterRole to go")
    assert kube.exists(CRD)
    assert kube.exists(f"{PRODUCTS.format(namespace=namespace)}/orders")

    install_release(helm)
    assert kube.exists(CLUSTER_ROLE)
    status = helm("status", RELEASE, "--namespace", OPERATOR_NAMESPACE, "-o", "json").stdout
    assert '"status":"deployed"' in status.replace(" ", "")


def test_standalone_catalog_pod_meets_pod_security_restricted(
    helm: HelmRunner, kube: BlockingClient, operator_release: str
) -> None:
    documents = _rendered(
        helm, "--namespace", OPERATOR_NAMESPACE, "--set", "catalog.standalone=true"
    )
    catalog = _named(documents, "Deployment", "x-dataproduct-operator-catalog")
    accounts = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts"
    kube.create_if_missing(accounts, {"metadata": {"name": "x-dataproduct-operator-catalog"}})
    try:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "catalog-psa-check", **catalog["spec"]["template"]["metadata"]},
            "spec": catalog["spec"]["template"]["spec"],
        }
        # The namespace enforces "restricted": the API server refuses a pod that does not meet it.
        pods = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods?dryRun=All"
        created = kube.create(pods, pod)
        assert created["spec"]["securityContext"]["runAsNonRoot"] is True
        escalating = copy.deepcopy(pod)
        escalating["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        with pytest.raises(ApiError) as refused:  # the check above can fail
            kube.create(pods, escalating)
        assert "violates PodSecurity" in refused.value.message
    finally:
        delete_if_present(kube, f"{accounts}/x-dataproduct-operator-catalog")


@pytest.mark.parametrize(
    ("namespace", "attributes", "expected"),
    [
        (OPERATOR_NAMESPACE, ("coordination.k8s.io", "leases", "create"), True),
        (OPERATOR_NAMESPACE, ("coordination.k8s.io", "leases", "update", RELEASE), True),
        (OPERATOR_NAMESPACE, ("coordination.k8s.io", "leases", "get", RELEASE), True),
        (OPERATOR_NAMESPACE, ("coordination.k8s.io", "leases", "update", "kube-scheduler"), False),
        (OPERATOR_NAMESPACE, ("coordination.k8s.io", "leases", "delete", RELEASE), False),
        ("kube-system", ("coordination.k8s.io", "leases", "update", RELEASE), False),
        ("kube-system", ("coordination.k8s.io", "leases", "create"), False),
    ],
)
def test_operator_may_hold_its_own_leader_lease_and_no_other(
    operator_release: str,
    kube: BlockingClient,
    namespace: str,
    attributes: tuple[str, ...],
    expected: bool,
) -> None:
    assert operator_allowed(kube, namespace, attributes) is expected
