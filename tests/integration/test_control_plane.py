"""The local control plane is a real Kubernetes: schemas, CEL, RBAC, admission and controllers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.rest import ApiError
from tests.clusters import KubectlRunner, ServiceAccountKubeconfig, run_kubectl
from tests.helpers import wait_for

GROUP = "smoke.datamesh.dev"


def _crd(plural: str, schema: dict[str, Any]) -> dict[str, Any]:
    kind = plural.capitalize().rstrip("s")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _condition(obj: dict[str, Any], kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def wait_for_job_condition(
    kube: BlockingClient, namespace: str, name: str, condition: str
) -> dict[str, Any]:
    def job_with_condition() -> dict[str, Any] | None:
        job: dict[str, Any] = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        return job if _condition(job, condition) else None

    return wait_for(job_with_condition, description=f"Job {name} to be {condition}")


def test_readyz_answers_ok(kube: BlockingClient) -> None:
    status, body = kube.raw("GET", "/readyz")
    assert (status, body) == (200, b"ok")


def test_server_reports_the_pinned_kubernetes_version(kube: BlockingClient) -> None:
    version = kube.get("/version")
    assert version["gitVersion"].startswith("v1.")
    assert int(version["minor"].rstrip("+")) >= 34


def test_structurally_invalid_crd_is_rejected(kube: BlockingClient) -> None:
    # A property without a type is not a structural schema.
    crd = _crd("brokens", {"type": "object", "properties": {"spec": {"properties": {}}}})
    with pytest.raises(ApiError) as rejected:
        kube.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert rejected.value.status == 422
    assert "type: Required value" in rejected.value.message


def test_object_breaking_a_cel_rule_is_rejected_with_the_rules_message(
    kube: BlockingClient, namespace: str
) -> None:
    message = "replicas must not exceed maxReplicas"
    spec_schema = {
        "type": "object",
        "properties": {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.replicas <= self.maxReplicas", "message": message}
        ],
    }
    crd = _crd("scalers", {"type": "object", "properties": {"spec": spec_schema}})
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    try:
        kube.create(path, crd)
    except ApiError as error:
        assert error.status == 409  # a rerun in the same session
    wait_for(
        lambda: _condition(kube.get(f"{path}/scalers.{GROUP}"), "Established"),
        description="the CRD to be established",
    )
    objects = f"/apis/{GROUP}/v1/namespaces/{namespace}/scalers"

    def scaler(name: str, replicas: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Scaler",
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "maxReplicas": 3},
        }

    # Discovery of a new CRD takes a moment to reach every handler; retry the valid create.
    wait_for(lambda: kube.create(objects, scaler("fits", 2)), description="a valid object")
    with pytest.raises(ApiError) as rejected:
        kube.create(objects, scaler("too-many", 5))
    assert rejected.value.status == 422
    assert message in rejected.value.message


def test_service_account_is_forbidden_without_a_role_binding_and_allowed_with_one(
    kube: BlockingClient,
    namespace: str,
    kubectl_binary: Any,
    service_account_kubeconfig: ServiceAccountKubeconfig,
) -> None:
    kubeconfig = service_account_kubeconfig(namespace, "reader")
    with BlockingClient.from_kubeconfig(kubeconfig) as reader:
        with pytest.raises(ApiError) as forbidden:
            reader.get(f"/api/v1/namespaces/{namespace}/configmaps")
        assert forbidden.value.status == 403
        assert f"system:serviceaccount:{namespace}:reader" in forbidden.value.message

        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        kube.create(
            f"{rbac}/roles",
            {
                "metadata": {"name": "configmap-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
            },
        )
        kube.create(
            f"{rbac}/rolebindings",
            {
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "configmap-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        )
        listing = wait_for(
            lambda: reader.get(f"/api/v1/namespaces/{namespace}/configmaps"),
            description="the RoleBinding to take effect",
        )
        assert listing["kind"] == "ConfigMapList"
        # The binding grants list on configmaps only, nothing else.
        with pytest.raises(ApiError) as still_forbidden:
            reader.get(f"/api/v1/namespaces/{namespace}/secrets")
        assert still_forbidden.value.status == 403
    # kubectl agrees, as a user would see it.
    result = run_kubectl(kubectl_binary, kubeconfig, "get", "secrets", "-n", namespace, check=False)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr


def test_job_reaches_complete(kubectl: KubectlRunner, kube: BlockingClient, namespace: str) -> None:
    kubectl("create", "job", "smoke", "--image=busybox", "-n", namespace, "--", "true")
    job = wait_for(
        lambda: (
            (j := kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/smoke"))
            and _condition(j, "Complete")
            and j
        ),
        description="the Job to complete",
    )
    assert job["status"]["succeeded"] == 1


def test_job_whose_pod_simulates_a_failure_fails(kube: BlockingClient, namespace: str) -> None:
    container = {
        "name": "main",
        "image": "busybox",
        "env": [{"name": "KWOK_SIMULATE_FAILURE", "value": "1"}],
    }
    kube.create(
        f"/apis/batch/v1/namespaces/{namespace}/jobs",
        {
            "metadata": {"name": "doomed"},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        },
    )
    job = wait_for(
        lambda: (
            (j := kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/doomed"))
            and _condition(j, "Failed")
            and j
        ),
        description="the Job to fail",
    )
    assert job["status"].get("succeeded", 0) == 0


def test_cronjob_spawns_a_job(kube: BlockingClient, namespace: str) -> None:
    container = {"name": "main", "image": "busybox"}
    kube.create(
        f"/apis/batch/v1/namespaces/{namespace}/cronjobs",
        {
            "metadata": {"name": "every-minute"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}
                    }
                },
            },
        },
    )
    # The CronJob controller fires on the next full minute.
    cronjob = wait_for(
        lambda: (
            (c := kube.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/every-minute"))
            and c.get("status", {}).get("lastSuccessfulTime")
            and c
        ),
        timeout=150,
        interval=1,
        description="the CronJob to run a Job to success",
    )
    jobs = kube.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert [j["metadata"]["ownerReferences"][0]["name"] for j in jobs] == ["every-minute"]
    assert cronjob["status"]["lastScheduleTime"]


def test_pvc_of_storage_class_standard_binds(kube: BlockingClient, namespace: str) -> None:
    kube.create(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "metadata": {"name": "data"},
            "spec": {
                "storageClassName": "standard",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    claim = wait_for(
        lambda: (
            (c := kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data"))
            and c["status"].get("phase") == "Bound"
            and c
        ),
        description="the PVC to bind",
    )
    volume = kube.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    assert volume["spec"]["storageClassName"] == "standard"
    assert volume["spec"]["capacity"]["storage"] == "1Gi"


def test_standard_is_the_default_storage_class(kube: BlockingClient) -> None:
    storage_class = kube.get("/apis/storage.k8s.io/v1/storageclasses/standard")
    annotations = storage_class["metadata"]["annotations"]
    assert annotations["storageclass.kubernetes.io/is-default-class"] == "true"


def test_deleting_an_owner_garbage_collects_its_dependent(
    kube: BlockingClient, namespace: str
) -> None:
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = kube.create(configmaps, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    kube.create(configmaps, {"metadata": {"name": "dependent", "ownerReferences": [reference]}})
    kube.create(configmaps, {"metadata": {"name": "bystander"}})
    kube.delete(f"{configmaps}/owner")
    wait_for(
        lambda: not kube.exists(f"{configmaps}/dependent"),
        description="the garbage collector to delete the dependent",
    )
    assert kube.exists(f"{configmaps}/bystander")


def test_deleting_a_namespace_completes(kube: BlockingClient) -> None:
    name = "t-namespace-deletion"
    kube.create("/api/v1/namespaces", {"metadata": {"name": name}})
    kube.create(f"/api/v1/namespaces/{name}/configmaps", {"metadata": {"name": "content"}})
    kube.delete(f"/api/v1/namespaces/{name}")
    wait_for(
        lambda: not kube.exists(f"/api/v1/namespaces/{name}"),
        description="the namespace to be deleted",
    )


def test_validating_admission_policy_denies_with_its_message(
    kube: BlockingClient, namespace: str
) -> None:
    admission = "/apis/admissionregistration.k8s.io/v1"
    policy_name = f"deny-forbidden-label-{namespace}"
    kube.create(
        f"{admission}/validatingadmissionpolicies",
        {
            "metadata": {"name": policy_name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "!has(object.metadata.labels) || "
                        "!('forbidden' in object.metadata.labels)",
                        "message": "the label forbidden is not allowed",
                    }
                ],
            },
        },
    )
    kube.create(
        f"{admission}/validatingadmissionpolicybindings",
        {
            "metadata": {"name": policy_name},
            "spec": {
                "policyName": policy_name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        },
    )
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"

    def denied() -> str | None:
        try:
            kube.create(configmaps, {"metadata": {"name": "probe", "labels": {"forbidden": "1"}}})
        except ApiError as error:
            return error.message if error.status == 422 else None
        kube.delete(f"{configmaps}/probe")
        return None

    message = wait_for(denied, description="the admission policy to be enforced")
    assert "the label forbidden is not allowed" in message
    assert policy_name in message
    kube.create(configmaps, {"metadata": {"name": "allowed", "labels": {"fine": "1"}}})
    kube.delete(f"{admission}/validatingadmissionpolicybindings/{policy_name}")
    kube.delete(f"{admission}/validatingadmissionpolicies/{policy_name}")


def test_pod_security_admission_enforces_the_restricted_profile(
    kube: BlockingClient, namespace: str
) -> None:
    kube.merge_patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    pod = {"metadata": {"name": "loose"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(ApiError) as rejected:
        kube.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    assert rejected.value.status == 403
    assert 'violates PodSecurity "restricted' in rejected.value.message


def test_kubectl_prints_the_node_as_ready(kubectl: KubectlRunner) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) >= 1
    assert all(_condition(node, "Ready") for node in nodes)
