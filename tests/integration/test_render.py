"""`dpo render` prints manifests the API server accepts, for every example."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from dataproduct_operator.k8s.blocking import BlockingClient
from dataproduct_operator.k8s.resources import object_path
from dataproduct_operator.k8s.rest import APPLY_PATCH
from tests.helpers import MESH_FIXTURE

EXAMPLE_FILES = sorted(path.name for path in MESH_FIXTURE.glob("*-*.yaml"))  # domain-product.yaml


def render(file_name: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "dataproduct_operator", "render", str(MESH_FIXTURE / file_name)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_rendered_children_pass_a_server_side_dry_run(
    kube: BlockingClient, restricted_namespace: str, file_name: str
) -> None:
    documents = render(file_name)
    kinds = {document["kind"] for document in documents}
    assert {"ServiceAccount", "PersistentVolumeClaim", "ConfigMap", "Role", "RoleBinding"} <= kinds
    checked = []
    for document in documents:
        if document["kind"] == "PrometheusRule":
            # No Prometheus operator here to validate it; its shape is checked instead.
            rules = [rule for group in document["spec"]["groups"] for rule in group["rules"]]
            assert rules
            assert all(rule["alert"] and rule["expr"] for rule in rules)
            continue
        document["metadata"]["namespace"] = restricted_namespace
        kube.request(
            "PATCH",
            object_path(document),
            document,
            content_type=APPLY_PATCH,
            query={"fieldManager": "render-test", "force": "true", "dryRun": "All"},
        )
        checked.append(document["kind"])
    assert len(checked) >= 7
    # A dry run writes nothing.
    configmaps = kube.get(f"/api/v1/namespaces/{restricted_namespace}/configmaps")["items"]
    assert {item["metadata"]["name"] for item in configmaps} == {"kube-root-ca.crt"}
