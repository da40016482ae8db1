"""The operator cannot be turned into cluster-admin: as the chart's ServiceAccount (its own
token, and SubjectAccessReviews as admin) it writes only in the namespaces of DataDomains, cannot
bind itself anywhere else or relabel a protected namespace to get there, cannot take an
existing namespace into the mesh (only a platform admin hands one over; it may create new,
labelled ones), and cannot touch an admission policy it did not make; a DataDomain cannot take a
namespace another one holds, nor the operator's own; one for an existing namespace waits until
a platform admin hands it over.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataproduct_operator.constants import (
    DEFAULT_ADMISSION_SLOTS,
    NAMESPACE_WRITER_BINDING,
    NAMESPACE_WRITER_ROLE,
    admission_slot_names,
)
from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import (
    DOMAINS,
    OPERATOR_NAMESPACE,
    RELEASE,
    KubectlRunner,
    delete_domain,
    domain_document,
    hand_over,
    namespace_name,
    operator_allowed,
    run_kubectl,
)
from tests.helpers import wait_for
from tests.products import OperatorProcess, condition, delete_if_present

POLICIES = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"


@pytest.fixture
def as_operator(kubectl_binary: Path, operator_kubeconfig: Path) -> KubectlRunner:
    """Run kubectl with the chart ServiceAccount's own token."""

    def runner(
        *args: str, check: bool = False, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_kubectl(kubectl_binary, operator_kubeconfig, *args, check=check, stdin=stdin)

    return runner


GUARD_PROBES = {
    "datamesh-operator-rolebindings": (
        "create", "rolebinding", "t-guard-probe", "-n", "kube-system",
        f"--clusterrole={NAMESPACE_WRITER_ROLE}",
        f"--serviceaccount={OPERATOR_NAMESPACE}:{RELEASE}",
    ),
    "datamesh-operator-namespaces": (
        "label", "namespace", "kube-system", "datamesh.dev/domain=kube-system",
    ),
}  # fmt: skip


@pytest.fixture(autouse=True)
def guards_in_effect(as_operator: KubectlRunner) -> None:
    """Wait until the API server enforces the chart's guards: a new ValidatingAdmissionPolicy
    takes effect a few seconds after it is created (``helm --wait`` does not wait for that).
    Probed with server-side dry runs, which are admitted as real requests and change nothing."""
    for policy, probe in GUARD_PROBES.items():

        def refused_by_policy(policy: str = policy, probe: tuple[str, ...] = probe) -> bool:
            answer = as_operator(*probe, "--dry-run=server")
            return answer.returncode != 0 and f"ValidatingAdmissionPolicy '{policy}'" in (
                answer.stderr
            )

        wait_for(refused_by_policy, timeout=60, description=f"{policy} to be in effect")


def may(kube: BlockingClient, namespace: str, group: str, resource: str, verb: str) -> bool:
    """A SubjectAccessReview, as admin, for the operator's ServiceAccount."""
    return operator_allowed(kube, namespace, (group, resource, verb))


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The error kubectl printed; every fragment in it."""
    assert result.returncode != 0, f"expected a refusal, got: {result.stdout}"
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def bind_writer(as_operator: KubectlRunner, namespace: str) -> subprocess.CompletedProcess[str]:
    """As the operator: bind itself to its writer role in ``namespace``."""
    return as_operator(
        "create", "rolebinding", "t-take-over", "-n", namespace,
        f"--clusterrole={NAMESPACE_WRITER_ROLE}",
        f"--serviceaccount={OPERATOR_NAMESPACE}:{RELEASE}",
    )  # fmt: skip


def create_job(as_operator: KubectlRunner, namespace: str) -> subprocess.CompletedProcess[str]:
    # Server-side dry run: authorized and admitted as a real create, but no pod runs.
    return as_operator(
        "create", "job", "t-escape", "-n", namespace, "--image=busybox", "--dry-run=server"
    )


def _events_of(kube: BlockingClient, name: str) -> list[dict[str, Any]]:
    """The Events about a DataDomain (cluster-scoped: its Events are in ``default``)."""
    listed = kube.get(
        "/api/v1/namespaces/default/events", query={"fieldSelector": f"involvedObject.name={name}"}
    )
    return list(listed["items"])


def test_the_operator_cannot_create_a_job_in_kube_system_even_by_binding_or_relabelling(
    kube: BlockingClient, as_operator: KubectlRunner, crds: None
) -> None:
    forbidden = 'cannot create resource "jobs" in API group "batch" in the namespace "kube-system"'
    refused(create_job(as_operator, "kube-system"), forbidden)
    assert not may(kube, "kube-system", "batch", "jobs", "create")

    # RBAC lets it create RoleBindings and bind its writer role by name; admission refuses.
    refused(
        bind_writer(as_operator, "kube-system"),
        "ValidatingAdmissionPolicy 'datamesh-operator-rolebindings'",
        "namespace kube-system carries no datamesh.dev/domain label: create a DataDomain for it",
    )
    refused(
        as_operator("label", "namespace", "kube-system", "datamesh.dev/domain=kube-system"),
        "ValidatingAdmissionPolicy 'datamesh-operator-namespaces'",
        "namespace kube-system is protected: the operator does not change it",
    )
    labels = kube.get("/api/v1/namespaces/kube-system")["metadata"].get("labels") or {}
    assert "datamesh.dev/domain" not in labels
    assert not kube.exists(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings/t-take-over"
    )
    refused(create_job(as_operator, "kube-system"), forbidden)
    assert not may(kube, "kube-system", "batch", "jobs", "create")


def test_the_operator_writes_no_configmap_outside_the_namespaces_of_domains(
    kube: BlockingClient, as_operator: KubectlRunner, namespace: str, crds: None
) -> None:
    write = as_operator("create", "configmap", "t-probe", "-n", namespace)
    refused(
        write, f'cannot create resource "configmaps" in API group "" in the namespace "{namespace}"'
    )
    assert not may(kube, namespace, "", "configmaps", "create")
    refused(
        bind_writer(as_operator, namespace),
        f"namespace {namespace} carries no datamesh.dev/domain label: create a DataDomain for it",
    )
    assert not may(kube, namespace, "", "configmaps", "create")
    # Reading is cluster-wide: the operator watches the kinds it manages everywhere.
    assert may(kube, namespace, "", "configmaps", "list")


def handed_over_message(namespace: str) -> str:
    return (
        f"namespace {namespace} exists and is not part of the mesh: the operator labels only the "
        "namespaces it creates; a platform admin hands it over with kubectl label namespace "
        f"{namespace} datamesh.dev/domain={namespace}"
    )


def test_the_operator_cannot_take_an_existing_namespace_into_the_mesh(
    kube: BlockingClient, as_operator: KubectlRunner, namespace: str, crds: None
) -> None:
    # A stolen token's path into an existing namespace: label it, bind the writer role there.
    refused(
        as_operator("label", "namespace", namespace, f"datamesh.dev/domain={namespace}"),
        "ValidatingAdmissionPolicy 'datamesh-operator-namespaces'",
        handed_over_message(namespace),
    )
    labels = kube.get(f"/api/v1/namespaces/{namespace}")["metadata"].get("labels") or {}
    assert "datamesh.dev/domain" not in labels
    refused(
        bind_writer(as_operator, namespace),
        f"namespace {namespace} carries no datamesh.dev/domain label",
    )
    assert not may(kube, namespace, "", "configmaps", "create")
    assert not may(kube, namespace, "batch", "jobs", "create")


def test_the_operator_may_create_a_new_namespace_labelled_for_a_domain(
    kube: BlockingClient, as_operator: KubectlRunner, crds: None, request: pytest.FixtureRequest
) -> None:
    name = namespace_name(request.node.name)
    document = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"datamesh.dev/domain": name}},
    }
    try:
        created = as_operator("create", "-f", "-", stdin=json.dumps(document))
        assert created.returncode == 0, created.stderr
        labels = kube.get(f"/api/v1/namespaces/{name}")["metadata"]["labels"]
        assert labels["datamesh.dev/domain"] == name
    finally:
        delete_if_present(kube, f"/api/v1/namespaces/{name}")


def test_a_domain_for_an_existing_namespace_waits_until_a_platform_admin_hands_it_over(
    kube: BlockingClient, operator: OperatorProcess, namespace: str, crds: None
) -> None:
    kube.create(DOMAINS, domain_document(namespace))
    try:

        def waiting() -> dict[str, Any] | None:
            found = condition(kube.get(f"{DOMAINS}/{namespace}"), "Ready") or {}
            return found if found.get("reason") == "NamespaceNotHandedOver" else None

        ready = wait_for(waiting, timeout=90, description="NamespaceNotHandedOver")
        message = (
            f"namespace {namespace} exists and is not part of the mesh: a platform admin hands "
            f"it over with kubectl label namespace {namespace} datamesh.dev/domain={namespace}"
        )
        assert ready["status"] == "False"
        assert ready["message"] == f"NamespaceReady: {message}"
        aspect = condition(kube.get(f"{DOMAINS}/{namespace}"), "NamespaceReady") or {}
        assert (aspect.get("status"), aspect.get("reason")) == ("False", "NamespaceNotHandedOver")
        # The Event follows the status write it reports
        wait_for(
            lambda: any(
                e["reason"] == "NamespaceNotHandedOver" and e["type"] == "Warning"
                for e in _events_of(kube, namespace)
            ),
            timeout=30,
            description="a NamespaceNotHandedOver Warning Event",
        )
        # Nothing in the namespace touched: no label, no binding, no policy.
        labels = kube.get(f"/api/v1/namespaces/{namespace}")["metadata"].get("labels") or {}
        assert "datamesh.dev/domain" not in labels
        bindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
        assert kube.get(bindings)["items"] == []
        policies = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        assert kube.get(policies)["items"] == []

        hand_over(kube, namespace)

        def onboarded() -> dict[str, Any] | None:
            found = condition(kube.get(f"{DOMAINS}/{namespace}"), "Ready") or {}
            return found if found.get("status") == "True" else None

        wait_for(onboarded, timeout=90, description="the handed-over domain to be Ready")
        assert kube.exists(f"{bindings}/{NAMESPACE_WRITER_BINDING}")
        labels = kube.get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    finally:
        delete_domain(kube, namespace)


def test_the_operator_writes_in_a_domain_namespace_once_the_domain_is_reconciled(
    kube: BlockingClient,
    as_operator: KubectlRunner,
    operator: OperatorProcess,
    domain: str,
) -> None:
    def ready() -> dict[str, Any] | None:
        found = kube.get(f"{DOMAINS}/{domain}")
        return found if (condition(found, "Ready") or {}).get("status") == "True" else None

    wait_for(ready, timeout=90, description=f"the DataDomain {domain} to be Ready")
    binding = kube.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{domain}/rolebindings/"
        f"{NAMESPACE_WRITER_BINDING}"
    )
    assert binding["roleRef"]["name"] == NAMESPACE_WRITER_ROLE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": OPERATOR_NAMESPACE}
    ]
    assert may(kube, domain, "", "configmaps", "create")
    assert may(kube, domain, "batch", "jobs", "create")
    # Secrets: the store logins' Secrets it writes, and what the owner Roles grant on their
    # products' Secrets; never listed nor watched.
    assert may(kube, domain, "", "secrets", "get")
    assert may(kube, domain, "", "secrets", "create")
    assert not may(kube, domain, "", "secrets", "list")
    assert not may(kube, domain, "", "secrets", "watch")
    assert not may(kube, "kube-system", "", "secrets", "get")
    created = as_operator("create", "configmap", "t-probe", "-n", domain)
    assert created.returncode == 0, created.stderr
    job = create_job(as_operator, domain)
    assert job.returncode == 0, job.stderr
    # Still nowhere else.
    assert not may(kube, "kube-system", "batch", "jobs", "create")


@pytest.fixture
def foreign_policy(kube: BlockingClient, crds: None) -> Iterator[str]:
    """A ValidatingAdmissionPolicy made by an admin, not by the operator."""
    name = "t-foreign-policy"
    configmaps = {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}
    spec = {
        "matchConstraints": {"resourceRules": [{**configmaps, "operations": ["CREATE"]}]},
        "validations": [{"expression": "true"}],
    }
    metadata = {"name": name, "labels": {"team": "platform"}}
    kube.create(POLICIES, {"metadata": metadata, "spec": spec})
    yield name
    delete_if_present(kube, f"{POLICIES}/{name}")


def test_the_operator_cannot_delete_or_change_an_admission_policy_it_did_not_make(
    kube: BlockingClient,
    as_operator: KubectlRunner,
    operator_kubeconfig: Path,
    foreign_policy: str,
) -> None:
    cannot = 'cannot {verb} resource "validatingadmissionpolicies"'
    refused(
        as_operator("delete", "validatingadmissionpolicy", foreign_policy, "--dry-run=server"),
        cannot.format(verb="delete"),
    )
    # kubectl reads the object first, which is refused already; a PATCH of its own is too.
    refused(
        as_operator(
            "label", "validatingadmissionpolicy", foreign_policy,
            "app.kubernetes.io/managed-by=dataproduct-operator", "--dry-run=server",
        ),
        cannot.format(verb="get"),
    )  # fmt: skip
    relabel = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "dataproduct-operator"}}}
    with (
        BlockingClient.from_kubeconfig(operator_kubeconfig) as operator_client,
        pytest.raises(ApiError) as refusal,
    ):
        operator_client.request(
            "PATCH", f"{POLICIES}/{foreign_policy}", relabel,
            content_type="application/merge-patch+json", query={"dryRun": "All"},
        )  # fmt: skip
    assert refusal.value.status == 403
    assert cannot.format(verb="patch") in refusal.value.message
    # Nor the chart's own guards (dry runs: they stay whatever the answer).
    for guarded in ("datamesh-operator-rolebindings", "datamesh-operator-namespaces"):
        refused(
            as_operator("delete", "validatingadmissionpolicy", guarded, "--dry-run=server"),
            cannot.format(verb="delete"),
        )
    assert kube.get(f"{POLICIES}/{foreign_policy}")["metadata"]["labels"] == {"team": "platform"}
    assert kube.exists(f"{POLICIES}/datamesh-operator-rolebindings")
    # Nor make one outside the pool of names the chart grants it, nor one of the pool by a
    # create that names no object (a POST to the collection): only server-side apply names it.
    document = kube.get(f"{POLICIES}/{foreign_policy}")
    for name in ("t-operator-made", admission_slot_names(DEFAULT_ADMISSION_SLOTS)[-1]):
        made = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": document["spec"],
        }
        refused(
            as_operator("create", "-f", "-", "--dry-run=server", stdin=json.dumps(made)),
            cannot.format(verb="create"),
        )
    refused(
        as_operator(
            "apply", "--server-side", "--dry-run=server", "-f", "-",
            stdin=json.dumps({**made, "metadata": {"name": "t-operator-made"}}),
        ),
        cannot.format(verb="patch"),
    )  # fmt: skip
    # The pool itself it may write, by server-side apply (a dry run: nothing stays).
    applied = as_operator(
        "apply", "--server-side", "--dry-run=server", "-f", "-", stdin=json.dumps(made)
    )
    assert applied.returncode == 0, applied.stderr


def _domain(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "datamesh.dev/v1alpha1",
        "kind": "DataDomain",
        "metadata": {"name": name},
        "spec": {"namespace": namespace, "owners": {"team": f"{name}-team"}},
    }


def test_a_second_domain_naming_a_held_namespace_is_told_and_touches_nothing(
    kube: BlockingClient, operator: OperatorProcess, domain: str
) -> None:
    def ready(name: str) -> dict[str, Any] | None:
        found = condition(kube.get(f"{DOMAINS}/{name}"), "Ready") or {}
        return found if found.get("status") == "True" else None

    wait_for(lambda: ready(domain), timeout=90, description=f"the DataDomain {domain} to be Ready")
    rival = f"{domain}-rival"
    kube.create(DOMAINS, _domain(rival, domain))
    try:

        def taken() -> dict[str, Any] | None:
            found = condition(kube.get(f"{DOMAINS}/{rival}"), "Ready") or {}
            return found if found.get("reason") == "NamespaceTaken" else None

        message = wait_for(taken, timeout=60, description="NamespaceTaken")["message"]
        assert f"namespace {domain} is held by the DataDomain {domain}, created earlier" in message
        assert "set spec.namespace to another namespace" in message
        wait_for(
            lambda: any(e["reason"] == "NamespaceTaken" for e in _events_of(kube, rival)),
            timeout=30,
            description="a NamespaceTaken Event",
        )
        # Nothing in the namespace changed hands.
        labels = kube.get(f"/api/v1/namespaces/{domain}")["metadata"]["labels"]
        assert labels["datamesh.dev/domain"] == domain
        selector = {"labelSelector": f"datamesh.dev/domain={rival}"}
        for path in (
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{domain}/rolebindings",
            f"/apis/networking.k8s.io/v1/namespaces/{domain}/networkpolicies",
            f"/api/v1/namespaces/{domain}/limitranges",
        ):
            assert kube.get(path, query=selector)["items"] == [], path
        editors = kube.get(
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{domain}/rolebindings/"
            "datamesh-domain-editors"
        )
        assert editors["subjects"][0]["name"] == f"{domain}-team"
        assert ready(domain) is not None
    finally:
        delete_domain(kube, rival)


def test_no_domain_may_take_the_operators_namespace(kube: BlockingClient, crds: None) -> None:
    with pytest.raises(ApiError) as refusal:
        kube.create(DOMAINS, _domain("t-takeover", OPERATOR_NAMESPACE))
    message = refusal.value.message
    assert "ValidatingAdmissionPolicy 'datamesh-domain-namespaces'" in message
    assert (
        f"spec.namespace {OPERATOR_NAMESPACE} is protected (the operator's namespace or the chart "
        "value protectedNamespaces): set spec.namespace to a namespace of the domain's own"
    ) in message
    assert not kube.exists(f"{DOMAINS}/t-takeover")
