"""File inputs (``spec.inputs[].file``): the API refuses a URL with credentials or a path out of
its claim with a message that says what to change; a sql pipeline reads a file from its URL or
from its claim, mounted read-only, and gets no run while that claim is missing; InputsReady says
which claim; the lineage graph, the exports and the run events name the files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dataproduct_operator.api.conditions import INPUTS_READY, Condition, ConditionStatus, Reason
from dataproduct_operator.api.dataproduct import (
    FILE_PATH_ABSOLUTE_MESSAGE,
    FILE_PATH_PARENT_MESSAGE,
    FILE_URL_MESSAGE,
    INPUT_KINDS_MESSAGE,
    URL_CREDENTIALS_MESSAGE,
    DataProduct,
    DataProductStatus,
    Input,
    PortEndpoint,
)
from dataproduct_operator.api.run_terms import FileFormat
from dataproduct_operator.catalog.exports.odps import build_odps
from dataproduct_operator.catalog.exports.openlineage import build_openlineage
from dataproduct_operator.catalog.lineage import NodeKind, build_lineage
from dataproduct_operator.catalog.svg import render_svg
from dataproduct_operator.constants import ANNOTATION_RUN
from dataproduct_operator.manifests.crd import DATA_PRODUCT, build_crd
from dataproduct_operator.openlineage.events import EventType, build_run_event
from dataproduct_operator.reconcile.dataproduct import (
    CLAIM_RECHECK_SECONDS,
    _input_notes,
    _when_to_look_again,
    wire_inputs,
)
from dataproduct_operator.reconcile.outcome import WARNING, Want
from dataproduct_operator.runner.engine import shown_url
from dataproduct_operator.runner.report import RunReport, RunResult
from dataproduct_operator.runner.spec import RunSpec, SourceKind
from dataproduct_operator.specs.dataproduct import StoreWiring, build_children
from dataproduct_operator.status.runs import ObservedRun, RunOutcome
from dataproduct_operator.status.stores import InputCheck, check_inputs, inputs_aspect
from tests.openlineage_schema import run_event_errors

URL = "https://files.example.com:8443/exports/rates.jsonl?signature=abc#top"
VOLUME = {"claimName": "drop-box", "path": "exports/orders.csv"}


REFUNDS = {"claimName": "drop-box", "path": "refunds.parquet"}  # on the same claim as orders


def _inputs() -> list[dict[str, Any]]:
    return [
        {"name": "orders", "file": {"format": "csv", "volume": VOLUME}},
        {"name": "rates", "file": {"format": "jsonl", "url": URL}},
        {"name": "refunds", "file": {"format": "parquet", "volume": REFUNDS}},
    ]


def _product(pipeline: dict[str, Any] | None = None, **spec: Any) -> DataProduct:
    sql = {"name": "build", "sql": "SELECT o.id FROM orders o JOIN rates r USING (id)",
           "output": "orders-v1", "sources": ["orders", "rates", "refunds"]}  # fmt: skip
    return DataProduct.from_object({
        "metadata": {"name": "orders", "namespace": "sales", "uid": "u-1",
                     "annotations": {ANNOTATION_RUN: "build"}},
        "spec": {
            "domain": "sales", "owner": {"team": "sales-data"}, "description": "Orders.",
            "inputs": _inputs(), "outputPorts": [{
                "name": "orders-v1", "store": {"name": "pg"},
                "schema": [{"name": "id", "type": "string", "unique": True}]}],
            "pipelines": [pipeline or sql], **spec,
        },
    })  # fmt: skip


PLACED = StoreWiring(
    store_ports=frozenset({"orders-v1"}),
    endpoints={"orders-v1": PortEndpoint.model_validate({
        "store": "pg", "host": "db", "port": 5432, "database": "mesh", "schema": "sales__orders",
        "table": "orders_v1"})},
    writer_secret="orders-store",
    claims=frozenset({"drop-box"}),
)  # fmt: skip


def _file(**file: Any) -> dict[str, Any]:
    return {"name": "orders", "file": {"format": "csv", **file}}


def _on_claim(path: str) -> dict[str, Any]:
    return _file(volume={"claimName": "drop-box", "path": path})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (_file(url="https://reader:s3cret@files.example.com/o.csv"), URL_CREDENTIALS_MESSAGE),
        (_file(url="https://token@files.example.com/o.csv"), URL_CREDENTIALS_MESSAGE),
        (_file(url="ftp://files.example.com/o.csv"), FILE_URL_MESSAGE),
        (_file(url="https:///o.csv"), FILE_URL_MESSAGE),
        (_on_claim("/etc/passwd"), FILE_PATH_ABSOLUTE_MESSAGE),
        (_on_claim("../other/o.csv"), FILE_PATH_PARENT_MESSAGE),
        (_on_claim("a/../../o.csv"), FILE_PATH_PARENT_MESSAGE),
        (_on_claim("a/.."), FILE_PATH_PARENT_MESSAGE),
        (_file(url="https://files.example.com/o.csv", volume=VOLUME),
         "a file input sets exactly one of url (http or https) or volume"),
        (_file(), "a file input sets exactly one of url (http or https) or volume"),
        ({**_file(url="https://files.example.com/o.csv"),
          "external": {"type": "s3", "uri": "s3://b/o.csv"}}, INPUT_KINDS_MESSAGE),
        ({"name": "orders"}, INPUT_KINDS_MESSAGE),
    ],
)  # fmt: skip
def test_a_file_input_that_cannot_be_read_safely_is_refused_saying_what_to_change(
    item: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Input.model_validate(item)
    assert message in str(refused.value)


def test_the_crd_carries_the_same_refusals_as_cel_rules() -> None:
    schema = build_crd(DATA_PRODUCT)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    item = schema["properties"]["spec"]["properties"]["inputs"]["items"]
    file = item["properties"]["file"]
    messages = [rule["message"] for rule in file["properties"]["url"]["x-kubernetes-validations"]]
    assert messages == [URL_CREDENTIALS_MESSAGE, FILE_URL_MESSAGE]
    volume = file["properties"]["volume"]
    assert [rule["message"] for rule in volume["x-kubernetes-validations"]] == [
        FILE_PATH_ABSOLUTE_MESSAGE,
        FILE_PATH_PARENT_MESSAGE,
    ]
    assert file["properties"]["url"]["maxLength"] == 2048
    assert volume["properties"]["path"]["maxLength"] == 1024
    assert file["required"] == ["format"]
    assert file["properties"]["format"]["enum"] == ["csv", "jsonl", "parquet"]
    assert item["x-kubernetes-validations"][0]["message"] == INPUT_KINDS_MESSAGE


def test_paths_that_stay_inside_the_claim_and_plain_urls_are_accepted() -> None:
    for path in ("o.csv", "a/b/o..csv", "..o/x.csv", "exports/*.csv"):
        Input.model_validate(_file(volume={"claimName": "drop.box-1", "path": path}))
    Input.model_validate(_file(url="http://10.0.0.1:8080/o.csv?user=x@y"))


def _pod(product: DataProduct, wiring: StoreWiring = PLACED) -> dict[str, Any] | None:
    job = next((c for c in build_children(product, wiring=wiring) if c["kind"] == "Job"), None)
    return job["spec"]["template"]["spec"] if job else None


def _run_spec(pod: dict[str, Any]) -> dict[str, Any]:
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    spec: dict[str, Any] = json.loads(env["DPO_RUN_SPEC"])
    return spec


def test_a_sql_pipeline_reads_a_url_as_is_and_a_file_on_a_claim_mounted_read_only() -> None:
    pod = _pod(_product())
    assert pod is not None
    assert _run_spec(pod)["sources"] == [
        {"name": "orders", "kind": "file", "format": "csv",
         "location": "/sources/drop-box/exports/orders.csv"},
        {"name": "rates", "kind": "file", "format": "jsonl", "location": URL},
        {"name": "refunds", "kind": "file", "format": "parquet",
         "location": "/sources/drop-box/refunds.parquet"},
    ]  # fmt: skip
    # Two inputs on one claim: one volume, mounted once, read-only in the pod and the mount.
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"] for v in claims] == [
        {"claimName": "drop-box", "readOnly": True}
    ]
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == claims[0]["name"]]
    assert mounts == [
        {"name": claims[0]["name"], "mountPath": "/sources/drop-box", "readOnly": True}
    ]
    # The runner takes the spec the operator writes.
    parsed = RunSpec.from_json(json.dumps(_run_spec(pod)))
    assert [(s.kind, s.format, s.is_remote_file) for s in parsed.sources] == [
        (SourceKind.FILE, FileFormat.CSV, False),
        (SourceKind.FILE, FileFormat.JSONL, True),
        (SourceKind.FILE, FileFormat.PARQUET, False),
    ]


def test_no_run_while_a_files_claim_is_not_found_in_the_namespace() -> None:
    assert _pod(_product(), replace(PLACED, claims=frozenset())) is None
    # A URL alone needs no claim.
    only_url = {"name": "build", "sql": "SELECT id FROM rates", "output": "orders-v1",
                "sources": ["rates"]}  # fmt: skip
    pod = _pod(_product(only_url), replace(PLACED, claims=frozenset()))
    assert pod is not None
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]


def test_an_image_pipeline_gets_nothing_of_file_inputs() -> None:
    image = {"name": "build", "image": "ghcr.io/acme/build:1"}
    pod = _pod(_product(image))
    assert pod is not None
    assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert "DPO_RUN_SPEC" not in names and not any(n.startswith("INPUT_") for n in names)


def _claim(product: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "dataproduct-operator",
              "datamesh.dev/data-product": product} if product else {}  # fmt: skip
    return {"metadata": {"name": "drop-box", "namespace": "sales", "labels": labels}}


def test_a_missing_claim_makes_inputs_not_ready_naming_the_claim() -> None:
    checks = check_inputs(_product(), {}, {"drop-box": None})
    assert [(c.name, c.reason, c.ready) for c in checks] == [
        ("orders", Reason.CLAIM_NOT_FOUND, False),
        ("rates", Reason.INPUTS_AVAILABLE, True),
        ("refunds", Reason.CLAIM_NOT_FOUND, False),
    ]
    ready, reason, message = inputs_aspect(checks)
    assert (ready, reason) == (False, Reason.CLAIM_NOT_FOUND)
    assert message.startswith(
        "input orders: PersistentVolumeClaim sales/drop-box does not exist: create it with the "
        "file at exports/orders.csv, or fix inputs[orders].file.volume.claimName"
    )
    assert wire_inputs(None, checks).claims == frozenset()


def test_a_claim_in_place_makes_the_files_ready_and_wires_the_claim() -> None:
    checks = check_inputs(_product(), {}, {"drop-box": _claim()})
    assert all(check.ready for check in checks)
    assert inputs_aspect(checks) == (
        True, Reason.INPUTS_AVAILABLE, "pipelines read the files orders, rates, refunds at each run"
    )  # fmt: skip
    assert wire_inputs(None, checks).claims == frozenset({"drop-box"})
    # The product's own claim is its own to read.
    assert all(c.ready for c in check_inputs(_product(), {}, {"drop-box": _claim("orders")}))


def test_another_products_output_claim_is_refused_as_a_file() -> None:
    checks = check_inputs(_product(), {}, {"drop-box": _claim("payments")})
    ready, reason, message = inputs_aspect(checks)
    assert (ready, reason) == (False, Reason.CLAIM_OF_ANOTHER_PRODUCT)
    assert "holds an output port of DataProduct payments" in message
    assert "read it as an input with dataProduct" in message


def _status(reason: str, message: str) -> DataProductStatus:
    status = ConditionStatus.TRUE if reason == Reason.INPUTS_AVAILABLE else ConditionStatus.FALSE
    condition = Condition(type=INPUTS_READY, status=status, reason=reason, message=message)
    return DataProductStatus(conditions=[condition])


def test_a_newly_missing_claim_gets_a_warning_event_once_and_a_reconcile_soon() -> None:
    product = _product()
    missing = _status(Reason.CLAIM_NOT_FOUND, "input orders: ... drop-box does not exist")
    notes = _input_notes(product, missing)
    assert [(n.type, n.reason, n.message) for n in notes] == [
        (WARNING, Reason.CLAIM_NOT_FOUND, "input orders: ... drop-box does not exist")
    ]
    seen = product.model_copy(update={"status": missing})
    assert _input_notes(seen, missing) == []
    assert _input_notes(product, _status(Reason.INPUTS_AVAILABLE, "")) == []
    want, after = _when_to_look_again(product, missing, now="2026-11-30T00:00:00Z",
                                      volume_work=False)  # fmt: skip
    assert (want, after) == (Want.RECONCILE, CLAIM_RECHECK_SECONDS)
    want, after = _when_to_look_again(product, _status(Reason.INPUTS_AVAILABLE, ""),
                                      now="2026-11-30T00:00:00Z", volume_work=False)  # fmt: skip
    assert want is not Want.RECONCILE


def test_lineage_shows_each_file_as_a_source_without_the_urls_query() -> None:
    graph = build_lineage([_product()], listed=lambda entry: True)
    files = {node.id: node for node in graph.nodes if node.kind is NodeKind.EXTERNAL}
    assert set(files) == {
        "external:file:https://files.example.com:8443/exports/rates.jsonl",
        "external:file:pvc://sales/drop-box/exports/orders.csv",
        "external:file:pvc://sales/drop-box/refunds.parquet",
    }
    rates = files["external:file:https://files.example.com:8443/exports/rates.jsonl"]
    assert (rates.label, rates.sublabel) == ("jsonl files.example.com/exports/rates.jsonl", "file")
    assert "signature" not in json.dumps([n.__dict__ for n in graph.nodes], default=str)
    assert {(e.source.split(":", 2)[2], e.label) for e in graph.edges} == {
        ("https://files.example.com:8443/exports/rates.jsonl", "rates"),
        ("pvc://sales/drop-box/exports/orders.csv", "orders"),
        ("pvc://sales/drop-box/refunds.parquet", "refunds"),
    }


EXPECTED_DATASETS = [
    {"namespace": "pvc://sales/drop-box", "name": "exports/orders.csv"},
    {"namespace": "https://files.example.com:8443", "name": "exports/rates.jsonl"},
    {"namespace": "pvc://sales/drop-box", "name": "refunds.parquet"},
]


def test_openlineage_names_a_url_by_host_and_path_and_a_claims_file_by_claim_and_path() -> None:
    (job, *_) = build_openlineage(_product(), event_time="2026-11-30T00:00:00Z")
    assert job["inputs"] == EXPECTED_DATASETS
    moment = datetime(2026, 11, 30, tzinfo=UTC)
    report = RunReport(
        result=RunResult.SUCCEEDED,
        start_time=moment,
        completion_time=moment,
        rows_read={"orders": 3, "rates": 2, "refunds": 1},
        rows_written=3,
    )
    run = ObservedRun("sales", "orders", "build", "orders-build-abc",
                      "0c5e3b0e-1111-4222-8333-444455556666", RunOutcome.SUCCEEDED, moment,
                      moment, None, report, None)  # fmt: skip
    event = build_run_event(_product(), run, EventType.COMPLETE, namespace_for_jobs="tests")
    assert run_event_errors(event) == []
    named = [{"namespace": d["namespace"], "name": d["name"]} for d in event["inputs"]]
    assert named == EXPECTED_DATASETS
    rows = [d["inputFacets"]["inputStatistics"]["rowCount"] for d in event["inputs"]]
    assert rows == [3, 2, 1]


def test_odps_lists_the_file_inputs_with_their_format_and_location() -> None:
    document = build_odps(_product(), None)
    properties = {p["property"]: p["value"] for p in document["customProperties"]}
    assert properties["fileInputs"] == [
        {"name": "orders", "format": "csv", "location": "pvc://sales/drop-box/exports/orders.csv"},
        {"name": "rates", "format": "jsonl",
         "location": "https://files.example.com:8443/exports/rates.jsonl"},
        {"name": "refunds", "format": "parquet", "location": "pvc://sales/drop-box/refunds.parquet"},
    ]  # fmt: skip


def test_a_failed_download_names_the_url_without_its_query_or_fragment() -> None:
    assert shown_url(URL) == "https://files.example.com:8443/exports/rates.jsonl"
    assert shown_url("http://10.0.0.1/o.csv") == "http://10.0.0.1/o.csv"


def test_an_input_check_of_a_url_needs_no_claim() -> None:
    check = InputCheck("rates", Reason.INPUTS_AVAILABLE, "")
    assert check.ready and check.claim is None and check.table is None


def test_the_lineage_svg_draws_the_files_as_sources_without_the_urls_query() -> None:
    svg = render_svg(build_lineage([_product()], listed=lambda entry: True))
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it well-formed
    text = " ".join("".join(element.itertext()) for element in root.iter())
    assert "jsonl files.example.com/exports/rates.jsonl" in text
    assert "pvc://sales/drop-box/exports/orders.csv" in text  # the hover text of its node
    assert "signature" not in svg
