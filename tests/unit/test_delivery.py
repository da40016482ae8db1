"""What ships: the operator's RBAC rules, the chart's values, the image and the wheel."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from dataproduct_operator import __version__
from dataproduct_operator.constants import (
    DEFAULT_ADMISSION_SLOTS,
    DOMAIN_EDITOR_ROLE,
    NAMESPACE_WRITER_ROLE,
    admission_slot_names,
)
from dataproduct_operator.k8s.resources import resource_of
from dataproduct_operator.manifests.chart_values import ChartValues
from dataproduct_operator.manifests.rbac import (
    NAMESPACE_WRITER_RULES,
    OPERATOR_RULES,
    WRITE,
    allows,
    build_cluster_role_rules,
    build_domain_cluster_roles,
    build_namespace_writer_rules,
)
from dataproduct_operator.reconcile.dataproduct import CHILD_KINDS, PROMETHEUS_RULE
from dataproduct_operator.specs.dataproduct import owner_rules, reader_rules
from tests.helpers import MESH_FIXTURE, build_wheel

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "dataproduct-operator"
PACKAGE = REPO / "operator" / "dataproduct_operator"


def test_operator_rules_name_every_verb_and_resource_and_never_escalate() -> None:
    for rule in build_cluster_role_rules() + build_namespace_writer_rules():
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert not {"escalate", "impersonate"} & set(rule["verbs"]), rule
        if "bind" in rule["verbs"]:  # two roles, by name: the editors' and its own writer role
            assert rule == {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "verbs": ["bind"],
                "resourceNames": [DOMAIN_EDITOR_ROLE, NAMESPACE_WRITER_ROLE],
            }
        elif "admissionregistration.k8s.io" in rule["apiGroups"] and "delete" in rule["verbs"]:
            assert rule["resourceNames"] == list(admission_slot_names(DEFAULT_ADMISSION_SLOTS))
        else:
            assert "resourceNames" not in rule
    assert all(rule.reason for rule in OPERATOR_RULES + NAMESPACE_WRITER_RULES)
    rules = build_cluster_role_rules()
    assert allows(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", DOMAIN_EDITOR_ROLE)
    assert allows(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", NAMESPACE_WRITER_ROLE)
    assert not allows(rules, "rbac.authorization.k8s.io", "clusterroles", "bind", "admin")


ADMISSION = "admissionregistration.k8s.io"
ADMISSION_KINDS = ("validatingadmissionpolicies", "validatingadmissionpolicybindings")


@pytest.mark.parametrize("slots", [DEFAULT_ADMISSION_SLOTS, 3])
def test_the_operator_writes_admission_policies_of_the_pool_only(slots: int) -> None:
    rules = build_cluster_role_rules(slots)
    pool = admission_slot_names(slots)
    (named,) = [r for r in rules if ADMISSION in r["apiGroups"] and "resourceNames" in r]
    assert named == {
        "apiGroups": [ADMISSION],
        "resources": list(ADMISSION_KINDS),
        "verbs": ["get", "create", "update", "patch", "delete"],
        "resourceNames": list(pool),
    }
    for resource in ADMISSION_KINDS:
        for verb in ("list", "watch"):
            assert allows(rules, ADMISSION, resource, verb)
        for verb in ("get", *WRITE):
            assert allows(rules, ADMISSION, resource, verb, pool[-1])
            for name in (f"datamesh-policy-{slots:03d}", "datamesh-operator-rolebindings"):
                assert not allows(rules, ADMISSION, resource, verb, name)


def test_the_chart_renders_the_pool_from_policies_max_enforced() -> None:
    template = (CHART / "templates" / "clusterrole.yaml").read_text()
    assert "range $slot := until (int .Values.policies.maxEnforced)" in template
    assert 'printf "datamesh-policy-%03d" $slot' in template
    schema = ChartValues.model_json_schema(by_alias=True)
    assert ChartValues().policies.max_enforced == DEFAULT_ADMISSION_SLOTS
    policies = schema["$defs"]["Policies"]["properties"]["maxEnforced"]
    assert (policies["minimum"], policies["maximum"]) == (1, 256)


def test_domain_editor_aggregates_view_and_its_own_rules_and_grants_no_secrets() -> None:
    editor, editor_rules, view = build_domain_cluster_roles()
    assert editor["metadata"]["name"] == DOMAIN_EDITOR_ROLE and "rules" not in editor
    selectors = [s["matchLabels"] for s in editor["aggregationRule"]["clusterRoleSelectors"]]
    assert editor_rules["metadata"]["labels"] in selectors
    assert view["metadata"]["labels"] == {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    assert view["metadata"]["labels"] in selectors
    granted = editor_rules["rules"]
    managed = [("datamesh.dev", "dataproducts"), ("batch", "jobs"), ("", "persistentvolumeclaims")]
    for group, resource in managed:
        assert allows(granted, group, resource, "create"), resource
        assert allows(granted, group, resource, "delete"), resource
    withheld = [
        ("", "secrets"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("datamesh.dev", "dataproducts/data"),
        ("", "resourcequotas"),
    ]
    for group, resource in withheld:
        assert not allows(granted + view["rules"], group, resource, "get"), resource


def test_operator_holds_every_permission_it_grants_to_readers_and_owners() -> None:
    """Kubernetes lets the operator write a Role only if it holds the Role's permissions in
    that namespace: a domain's namespace, where it is bound to its writer role too."""
    rules = build_cluster_role_rules() + build_namespace_writer_rules()
    granted = [*reader_rules("orders"), *owner_rules("orders")]
    for rule in granted:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert allows(rules, group, resource, verb), (group, resource, verb)


@pytest.mark.parametrize(("api_version", "kind"), [*CHILD_KINDS, PROMETHEUS_RULE], ids=str)
def test_operator_reads_every_child_kind_everywhere_and_writes_it_only_where_bound(
    api_version: str, kind: str
) -> None:
    group = api_version.rpartition("/")[0]
    plural = resource_of(api_version, kind).plural
    cluster_wide, writer = build_cluster_role_rules(), build_namespace_writer_rules()
    for verb in ("get", "list", "watch"):
        assert allows(cluster_wide, group, plural, verb), (kind, verb)
    for verb in WRITE:
        assert allows(writer, group, plural, verb), (kind, verb)
        # Cluster-wide it may only create RoleBindings (to bind itself; admission fences it).
        expected = (plural, verb) == ("rolebindings", "create")
        assert allows(cluster_wide, group, plural, verb) is expected, (kind, verb)


def test_cluster_wide_rules_write_no_namespaced_kind_but_role_bindings() -> None:
    namespaced_writes = [
        (rule["apiGroups"][0], resource, verb)
        for rule in build_cluster_role_rules()
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if verb in WRITE
    ]
    assert sorted(namespaced_writes) == sorted(
        [
            *(("datamesh.dev", r, v) for r in ("dataproducts",) for v in ("update", "patch")),
            *(("datamesh.dev", "dataproducts/status", v) for v in ("update", "patch")),
            ("datamesh.dev", "dataproducts/finalizers", "update"),
            ("rbac.authorization.k8s.io", "rolebindings", "create"),
            ("", "events", "create"),
            ("", "events", "patch"),
            ("datamesh.dev", "datadomains", "patch"),
            *(("datamesh.dev", "datadomains/status", v) for v in ("update", "patch")),
            ("datamesh.dev", "datadomains/finalizers", "update"),
            ("", "namespaces", "create"),
            ("", "namespaces", "patch"),
            ("", "persistentvolumes", "patch"),  # cluster-scoped: no namespaced role can
            *(("datamesh.dev", "meshpolicies/status", v) for v in ("update", "patch")),
            ("datamesh.dev", "meshpolicies/finalizers", "update"),
            *(("datamesh.dev", "datastores/status", v) for v in ("update", "patch")),
            # Access requests may come from any namespace, a domain's or not: only their
            # status and their decisions' are written, never the objects themselves.
            *(
                ("datamesh.dev", f"{r}/status", v)
                for r in ("dataaccessrequests", "dataaccessdecisions")
                for v in ("update", "patch")
            ),
            *(
                ("admissionregistration.k8s.io", r, v)
                for r in ("validatingadmissionpolicies", "validatingadmissionpolicybindings")
                for v in WRITE
            ),
        ]
    )


def test_values_yaml_holds_the_documented_defaults_each_under_a_comment() -> None:
    text = (CHART / "values.yaml").read_text()
    assert yaml.safe_load(text) == ChartValues().model_dump(by_alias=True)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[a-zA-Z]+:", line):
            assert lines[index - 1].startswith("#"), f"values.yaml: {line!r} has no comment"


def test_chart_and_package_share_one_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == __version__


def test_image_user_is_the_user_the_chart_runs_as() -> None:
    dockerfile = (REPO / "operator" / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, flags=re.MULTILINE)
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    (run_as,) = re.findall(r"runAsUser: (\d+)", deployment)
    assert user == (run_as, run_as)
    assert re.search(r'^ENTRYPOINT \["dpo"\]$', dockerfile, flags=re.MULTILINE)


def test_the_wheel_carries_every_file_the_package_reads(tmp_path: Path) -> None:
    """The image installs the wheel: templates and assets must be inside it; the local control
    plane (cluster/: its assets and Go pins too) stays out, as tests/unit/test_supply_chain.py
    checks."""
    wheel = build_wheel(tmp_path / "wheel")
    assert wheel.name.startswith(f"dataproduct_operator-{__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    data_files = [
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
        if "cluster" not in path.relative_to(PACKAGE).parts[:1]
    ]
    assert data_files
    assert sorted(set(data_files) - shipped) == []
    assert [name for name in shipped if name.startswith("dataproduct_operator/cluster/")] == []

    # Rendering from the unpacked wheel alone, away from the repository, works.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import dataproduct_operator.specs.stream as s;"
        "assert s.__file__.startswith(sys.argv[1]), s.__file__;"
        "from pathlib import Path;"
        "print(s.render_file(Path(sys.argv[2]), default_namespace='default'))"
    )
    rendered = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "site"),
            str(MESH_FIXTURE / "sales-orders.yaml"),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    ).stdout
    assert "kind: CronJob" in rendered
