"""Open-standard exports of the example products: golden files, the standards' own schemas."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator, Draft201909Validator, Draft202012Validator
from jsonschema.protocols import Validator
from open_data_contract_standard.model import OpenDataContractStandard
from referencing import Registry, Resource

from dataproduct_operator.api.datadomain import DataDomain
from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.exports import EXPORT_FORMATS, export_format
from dataproduct_operator.catalog.exports.backstage import (
    MAX_NAME,
    backstage_tag,
    build_backstage_entities,
    entity_name,
)
from dataproduct_operator.catalog.exports.ids import contract_id, product_id
from dataproduct_operator.catalog.exports.odcs import (
    ODCS_API_VERSION,
    build_odcs,
    build_odcs_contracts,
    logical_type,
)
from dataproduct_operator.catalog.exports.odps import build_odps
from dataproduct_operator.catalog.exports.openlineage import SPEC_URL, build_openlineage
from dataproduct_operator.catalog.lineage import redact_uri
from dataproduct_operator.cli import main
from dataproduct_operator.errors import UserError
from dataproduct_operator.openlineage.naming import external_dataset
from tests.helpers import MESH_FIXTURE, assert_golden, example_documents, example_product
from tests.lineage_helpers import URI_CASES
from tests.openlineage_schema import FORMATS

SCHEMAS = Path(__file__).parent / "schemas"
EVENT_TIME = "2024-05-01T12:00:00.000Z"
EXAMPLE_FILES = sorted(
    path.name
    for path in MESH_FIXTURE.glob("*.yaml")
    if any(d.get("kind") == "DataProduct" for d in example_documents(path.name))
)


def _product(file_name: str = "sales-orders.yaml", **spec: Any) -> DataProduct:
    document = example_product(file_name)
    document["spec"].update(spec)
    return DataProduct.from_object(document)


def _with_source_uri(uri: str) -> DataProduct:
    """The example sales/orders product, its external input ``raw`` reading ``uri``."""
    document = example_product()
    document["spec"]["inputs"][0]["external"]["uri"] = uri
    return DataProduct.from_object(document)


def _renamed(namespace: str, name: str) -> DataProduct:
    """The example sales/orders product as ``namespace``/``name``."""
    document = example_product()
    document["metadata"].update(namespace=namespace, name=name)
    return DataProduct.from_object(document)


def _exports(product: DataProduct) -> dict[str, str]:
    return {
        name: export.render(product, _domain(product.spec.domain), EVENT_TIME)
        for name, export in EXPORT_FORMATS.items()
    }


def _domain(name: str) -> DataDomain | None:
    for document in example_documents("domains.yaml"):
        if document["metadata"]["name"] == name:
            return DataDomain.from_object(document)
    return None


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _errors(validator: Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


# -- the standards' schemas -------------------------------------------------------------------


def _odps_validator() -> Validator:
    schema = _load(SCHEMAS / "odps-json-schema-v1.0.0.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema"
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema, format_checker=FORMATS)


def _odcs_validator() -> Validator:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2019-09/schema"
    return Draft201909Validator(schema, format_checker=FORMATS)


BACKSTAGE_KIND_SCHEMAS = {
    "System": "System.v1alpha1",
    "Component": "Component.v1alpha1",
    "API": "API.v1alpha1",
    "Resource": "Resource.v1alpha1",
    "Domain": "Domain.v1alpha1",
}


def _backstage_validators() -> dict[str, Validator]:
    """A validator per kind; the schemas' references ("Entity", "common#relation") resolve
    among the vendored files by their ``$id``, never over the network."""
    schemas = [_load(path) for path in sorted((SCHEMAS / "backstage").glob("*.schema.json"))]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    by_file = {
        path.name.removesuffix(".schema.json"): _load(path)
        for path in (SCHEMAS / "backstage").glob("*.schema.json")
    }
    return {
        kind: Draft7Validator(by_file[stem], registry=registry, format_checker=FORMATS)
        for kind, stem in BACKSTAGE_KIND_SCHEMAS.items()
    }


def _openlineage_registry() -> Registry[Any]:
    """The vendored core spec and facets by ``$id``.

    The facets refer to the core spec by the version they were written against (1-0-2,
    1-0-3, 2-0-2); those references resolve to the vendored core, whose BaseFacet, JobFacet
    and DatasetFacet they use.
    """
    core = _load(SCHEMAS / "openlineage" / "OpenLineage.json")
    facets = [_load(path) for path in sorted((SCHEMAS / "openlineage" / "facets").glob("*.json"))]
    core_resource = Resource.from_contents(core)
    pairs = [(core["$id"], core_resource)]
    pairs += [
        (f"https://openlineage.io/spec/{version}/OpenLineage.json", core_resource)
        for version in ("1-0-2", "1-0-3", "2-0-2")
    ]
    pairs += [(facet["$id"], Resource.from_contents(facet)) for facet in facets]
    return Registry().with_resources(pairs)


OPENLINEAGE = _openlineage_registry()


def _openlineage_validator(schema: dict[str, Any]) -> Validator:
    return Draft202012Validator(schema, registry=OPENLINEAGE, format_checker=FORMATS)


def _facets(event: dict[str, Any]) -> list[dict[str, Any]]:
    datasets = [event["dataset"]] if "dataset" in event else []
    datasets += event.get("inputs", []) + event.get("outputs", [])
    found = list(event.get("job", {}).get("facets", {}).values())
    for dataset in datasets:
        found += dataset.get("facets", {}).values()
    return found


# -- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("format_name", sorted(EXPORT_FORMATS))
@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_exports_of_the_examples_match_their_golden_files(file_name: str, format_name: str) -> None:
    product = _product(file_name)
    export = EXPORT_FORMATS[format_name]
    text = export.render(product, _domain(product.spec.domain), EVENT_TIME)
    stem = file_name.removesuffix(".yaml")
    assert_golden(text, f"exports/{stem}.{export.file_suffix}")


def test_every_example_product_is_exported() -> None:
    assert EXAMPLE_FILES == [
        "crm-customers.yaml",
        "finance-revenue.yaml",
        "marketing-customer-segments.yaml",
        "sales-orders.yaml",
    ]


# -- validity against the standards -----------------------------------------------------------


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_odps_exports_validate_against_the_odps_schema(file_name: str) -> None:
    product = _product(file_name, version=None)
    created = _product(file_name).model_copy(update={"creation_timestamp": "2024-03-01T10:00:00Z"})
    validator = _odps_validator()
    for item in (product, created):
        for domain in (None, _domain(item.spec.domain)):
            document = build_odps(item, domain, catalog_url="https://catalog.example.com")
            assert _errors(validator, yaml.safe_load(yaml.safe_dump(document))) == []


def test_odps_schema_check_catches_a_broken_document() -> None:
    document = build_odps(_product())
    document["outputPorts"][0].pop("version")
    document["productCreatedTs"] = "yesterday"
    errors = _errors(_odps_validator(), document)
    assert any("'version' is a required property" in e for e in errors)
    assert any("is not a 'date-time'" in e for e in errors)


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_odcs_contracts_validate_with_the_odcs_model_and_schema(file_name: str) -> None:
    product = _product(file_name).model_copy(update={"creation_timestamp": "2024-03-01T10:00:00Z"})
    validator = _odcs_validator()
    for contract in build_odcs_contracts(product):
        loaded = yaml.safe_load(yaml.safe_dump(contract))
        OpenDataContractStandard.model_validate(loaded)
        assert _errors(validator, loaded) == []


def test_odcs_api_version_is_the_newest_v3_the_package_accepts() -> None:
    schema = json.loads(
        resources.files("open_data_contract_standard").joinpath("schema.json").read_text()
    )
    versions = [v for v in schema["properties"]["apiVersion"]["enum"] if v.startswith("v3.")]
    newest = max(versions, key=lambda v: tuple(int(part) for part in v[1:].split(".")))
    assert newest == ODCS_API_VERSION


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_backstage_entities_validate_against_the_backstage_schemas(file_name: str) -> None:
    product = _product(file_name)
    validators = _backstage_validators()
    entities = build_backstage_entities(
        product, _domain(product.spec.domain), catalog_url="https://catalog.example.com/"
    )
    assert {e["kind"] for e in entities} >= {"Domain", "System", "Resource", "API"}
    for entity in entities:
        assert _errors(validators[entity["kind"]], entity) == [], entity["metadata"]["name"]


def test_backstage_schema_check_catches_a_broken_entity() -> None:
    (system,) = [e for e in build_backstage_entities(_product()) if e["kind"] == "System"]
    del system["spec"]["owner"]
    system["metadata"]["links"] = [{"title": "no url"}]
    errors = _errors(_backstage_validators()["System"], system)
    assert any("'owner' is a required property" in e for e in errors)
    assert errors


@pytest.mark.parametrize("file_name", EXAMPLE_FILES)
def test_openlineage_events_validate_against_the_spec_and_their_facets(file_name: str) -> None:
    events = build_openlineage(_product(file_name), event_time=EVENT_TIME)
    core = _load(SCHEMAS / "openlineage" / "OpenLineage.json")
    for event in events:
        assert event["schemaURL"].startswith(core["$id"] + "#/$defs/")
        definition = event["schemaURL"].partition("#")[2]
        validator = _openlineage_validator({"$ref": event["schemaURL"]})
        assert _errors(validator, event) == [], definition
        assert _errors(_openlineage_validator(core), event) == []
        for facet in _facets(event):
            # The facet's _schemaURL names a vendored schema, and the facet is valid under it.
            assert _errors(_openlineage_validator({"$ref": facet["_schemaURL"]}), facet) == []


def test_openlineage_schema_check_catches_a_broken_event() -> None:
    (job_event, *_) = build_openlineage(_product(), event_time="not a time")
    job_event["job"]["facets"]["jobType"].pop("integration")
    facet = job_event["job"]["facets"]["jobType"]
    assert _errors(_openlineage_validator({"$ref": facet["_schemaURL"]}), facet)
    job_schema = _openlineage_validator({"$ref": job_event["schemaURL"]})
    assert any("is not a 'date-time'" in e for e in _errors(job_schema, job_event))


def test_openlineage_spec_url_is_the_vendored_spec() -> None:
    assert _load(SCHEMAS / "openlineage" / "OpenLineage.json")["$id"] == SPEC_URL


# -- what the exports say ---------------------------------------------------------------------


def _custom(document: dict[str, Any]) -> dict[str, Any]:
    return {entry["property"]: entry["value"] for entry in document["customProperties"]}


def test_ids_are_namespace_and_name_and_port() -> None:
    assert product_id("sales", "orders") == "sales.orders"
    assert contract_id("sales", "orders", "orders-v1") == "sales.orders.orders-v1"


def test_odps_output_ports_point_at_the_odcs_contract_ids() -> None:
    product = _product()
    document = build_odps(product)
    contracts = build_odcs_contracts(product)
    assert [p["contractId"] for p in document["outputPorts"]] == [c["id"] for c in contracts]
    assert document["id"] == "sales.orders"


def test_odps_input_ports_name_the_contract_of_the_other_products_port() -> None:
    document = build_odps(_product("marketing-customer-segments.yaml"))
    assert [p["contractId"] for p in document["inputPorts"]] == [
        "crm.customers.customers-v1",
        "sales.orders.orders-v1",
    ]


def test_odps_custom_properties_carry_what_odps_has_no_field_for() -> None:
    product = _product()
    properties = _custom(build_odps(product, _domain("sales")))
    assert properties["classification"] == "Confidential"
    assert properties["ownerTeam"] == "sales-data"
    assert properties["kubernetesNamespace"] == "sales"
    assert properties["deletionPolicy"] == "Retain"
    assert properties["discoverability"] == "Public"
    assert properties["readerCount"] == 4
    assert properties["costCenter"] == "CC-1100"
    assert [p["name"] for p in properties["pipelines"]] == ["ingest", "backfill"]
    assert properties["externalInputs"] == [
        {"name": "raw", "type": "postgres", "uri": "postgresql://shop-db.sales:5432/shop"}
    ]
    assert "costCenter" not in _custom(build_odps(product))


@pytest.mark.parametrize(
    ("lifecycle", "status"),
    [
        ("Draft", "draft"),
        ("Experimental", "proposed"),
        ("Production", "active"),
        ("Deprecated", "deprecated"),
        ("Retired", "retired"),
    ],
)
def test_lifecycle_becomes_the_bitol_status_and_is_kept_as_is(lifecycle: str, status: str) -> None:
    product = _product(lifecycle=lifecycle)
    document = build_odps(product)
    assert document["status"] == status
    assert _custom(document)["lifecycle"] == lifecycle
    assert build_odcs(product, "orders-v1")["status"] == status


def test_odps_has_the_creation_time_when_the_object_has_one() -> None:
    product = _product().model_copy(update={"creation_timestamp": "2024-03-01T10:00:00Z"})
    assert build_odps(product)["productCreatedTs"] == "2024-03-01T10:00:00Z"
    assert "productCreatedTs" not in build_odps(_product())


def test_pipeline_commands_and_environment_stay_out_of_the_exports() -> None:
    document = example_product("marketing-customer-segments.yaml")
    pipeline = document["spec"]["pipelines"][0]
    pipeline["command"] = ["train-with-a-token"]
    pipeline["args"] = ["--password=swordfish"]
    pipeline["env"] = [{"name": "API_KEY", "value": "abc123"}]
    product = DataProduct.from_object(document)
    for export in EXPORT_FORMATS.values():
        text = export.render(product, None, EVENT_TIME)
        for hidden in ("train-with-a-token", "swordfish", "API_KEY", "abc123"):
            assert hidden not in text


# Source URIs that carry a secret where a weaker redactor missed it, and the secrets.
LEAKY_URIS = [
    ("admin:s3cret@db:5432/shop", ["admin", "s3cret"]),
    ("postgresql://u:pa/ss@host/db", ["u:pa", "pa/ss", "ss@"]),
    ("https://h/p#access_token=tok3n", ["access_token", "tok3n"]),
    ("https://h/p?auth=tok3n", ["auth=", "tok3n"]),
    (
        "postgresql://shop:s3cret@shop-db.sales:5432/shop?sslmode=require&password=hunter2",
        ["s3cret", "hunter2", "sslmode"],
    ),
    ("jdbc:sqlserver://ledger:1433;databaseName=gl;password=hunter2", ["hunter2"]),
    ("jdbc:sqlserver://ledger:1433;databaseName=hunter2 x;password=zq9", ["hunter2", "zq9"]),
    ("s3://bucket/a\x1b[31mb", ["\x1b"]),
]


@pytest.mark.parametrize(("uri", "secrets"), LEAKY_URIS)
def test_credentials_in_a_source_uri_never_reach_an_export(uri: str, secrets: list[str]) -> None:
    for format_name, text in _exports(_with_source_uri(uri)).items():
        for secret in secrets:
            assert secret not in text, format_name


@pytest.mark.parametrize(("uri", "redacted", "short"), URI_CASES)
def test_exports_show_a_source_uri_only_as_the_lineage_graph_redacts_it(
    uri: str, redacted: str, short: str
) -> None:
    exports = _exports(_with_source_uri(uri))
    assert exports == _exports(_with_source_uri(redacted))
    # What redaction removes (its words of five letters or more) is nowhere in an export.
    removed = set(re.findall(r"[A-Za-z0-9]{5,}", uri)) - set(re.findall(r"[A-Za-z0-9]+", redacted))
    for format_name, text in exports.items():
        for secret in removed:
            assert secret not in text, format_name


def test_odps_lists_external_inputs_with_the_redacted_uri() -> None:
    uri = "postgresql://u:pa/ss@host/db?auth=tok3n#frag"
    (external,) = _custom(build_odps(_with_source_uri(uri)))["externalInputs"]
    assert external == {"name": "raw", "type": "postgres", "uri": "postgresql://host/db"}
    assert redact_uri(uri) == "postgresql://host/db"


def test_a_pii_column_is_tagged_pii_in_its_contract() -> None:
    contract = build_odcs(_product(), "orders-v1")
    columns = {p["name"]: p for p in contract["schema"][0]["properties"]}
    assert columns["email"]["tags"] == ["pii"]
    assert columns["email"]["classification"] == "restricted"
    assert "tags" not in columns["order_id"]


def test_required_and_unique_columns_get_quality_rules() -> None:
    contract = build_odcs(_product(), "orders-v1")
    order_id = contract["schema"][0]["properties"][0]
    assert (order_id["required"], order_id["unique"]) == (True, True)
    assert [(q["metric"], q["mustBe"]) for q in order_id["quality"]] == [
        ("nullValues", 0),
        ("duplicateValues", 0),
    ]


@pytest.mark.parametrize(
    ("column_type", "logical"),
    [
        ("string", "string"),
        ("integer", "integer"),
        ("BIGINT", "integer"),
        ("double", "number"),
        ("bool", "boolean"),
        ("date", "date"),
        ("datetime", "timestamp"),
        ("geometry", "string"),
    ],
)
def test_column_types_map_to_odcs_logical_types(column_type: str, logical: str) -> None:
    assert logical_type(column_type) == logical


def test_an_unknown_column_type_keeps_its_name_as_the_physical_type() -> None:
    document = example_product()
    document["spec"]["outputPorts"][0]["schema"][1]["type"] = "geometry"
    contract = build_odcs(DataProduct.from_object(document), "orders-v1")
    line = contract["schema"][0]["properties"][1]
    assert (line["logicalType"], line["physicalType"]) == ("string", "geometry")


def test_slo_becomes_latency_and_availability_sla_properties() -> None:
    sla = build_odcs(_product(), "orders-v1")["slaProperties"]
    assert [(s["property"], s["value"], s["unit"]) for s in sla] == [
        ("latency", 24, "hours"),
        ("availability", 99.5, "%"),
    ]


def test_the_port_volume_is_a_local_server_with_its_claim() -> None:
    document = example_product()
    port = document["spec"]["outputPorts"][0]
    port.update(format="parquet", storage={"size": "5Gi"})  # the example's port is a table
    (server,) = build_odcs(DataProduct.from_object(document), "orders-v1")["servers"]
    assert (server["type"], server["path"], server["format"]) == (
        "local",
        "/data/orders-v1",
        "parquet",
    )
    assert _custom(server)["persistentVolumeClaim"] == "orders-orders-v1"
    assert _custom(server)["storageSize"] == "5Gi"


def test_an_unknown_port_is_a_user_error_naming_the_ports() -> None:
    with pytest.raises(UserError, match="no output port nope; its ports: orders-v1, daily-revenue"):
        build_odcs(_product(), "nope")


def test_backstage_depends_on_the_resources_of_input_products() -> None:
    entities = build_backstage_entities(_product("marketing-customer-segments.yaml"))
    (resource,) = [e for e in entities if e["kind"] == "Resource"]
    assert resource["spec"]["dependsOn"] == [
        "resource:default/crm.customers.customers-v1",
        "resource:default/sales.orders.orders-v1",
    ]
    upstream = build_backstage_entities(_product("crm-customers.yaml"))
    assert "crm.customers.customers-v1" in {e["metadata"]["name"] for e in upstream}


def test_an_input_without_namespace_is_in_the_products_namespace() -> None:
    document = example_product("marketing-customer-segments.yaml")
    del document["spec"]["inputs"][0]["dataProduct"]["namespace"]
    product = DataProduct.from_object(document)
    (resource,) = [e for e in build_backstage_entities(product) if e["kind"] == "Resource"]
    assert resource["spec"]["dependsOn"][0] == "resource:default/marketing.customers.customers-v1"
    (event, *_) = build_openlineage(product, event_time=EVENT_TIME)
    assert event["inputs"][0] == {
        "namespace": "datamesh://marketing",
        "name": "customers.customers-v1",
    }
    assert build_odps(product)["inputPorts"][0]["contractId"] == "marketing.customers.customers-v1"


def test_backstage_owner_is_the_teams_group_and_api_definition_is_the_contract() -> None:
    entities = build_backstage_entities(_product())
    assert {e["spec"]["owner"] for e in entities} == {"group:default/sales-data"}
    (api, *_) = [e for e in entities if e["kind"] == "API"]
    assert api["spec"]["type"] == "data-contract"
    assert yaml.safe_load(api["spec"]["definition"]) == build_odcs(_product(), "orders-v1")
    assert "Domain" not in {e["kind"] for e in entities}


# Backstage's rule for metadata.name (KubernetesValidatorFunctions.isValidObjectName).
BACKSTAGE_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def test_backstage_names_join_namespace_product_and_port_with_dots() -> None:
    entities = build_backstage_entities(_product())
    names = {(e["kind"], e["metadata"]["name"]) for e in entities}
    assert names == {
        ("System", "sales.orders"),
        ("Resource", "sales.orders.orders-v1"),
        ("API", "sales.orders.orders-v1"),
        ("Resource", "sales.orders.daily-revenue"),
        ("API", "sales.orders.daily-revenue"),
        ("Component", "sales.orders.ingest"),
        ("Component", "sales.orders.backfill"),
    }
    assert entity_name("Sales Data Team") == "Sales-Data-Team"
    assert backstage_tag("Master Data!") == "master-data"


def test_a_backstage_name_of_63_characters_is_kept_whole() -> None:
    name = entity_name("n" * 20, "p" * 20, "q" * 21)
    assert name == f"{'n' * 20}.{'p' * 20}.{'q' * 21}"
    assert len(name) == MAX_NAME


def test_a_longer_backstage_name_is_a_prefix_and_a_hash_of_the_whole() -> None:
    name = entity_name("n" * 63, "orders", "orders-v1")
    assert len(name) == MAX_NAME
    assert BACKSTAGE_NAME.fullmatch(name)
    prefix, _, digest = name.rpartition("-")
    assert prefix == "n" * (MAX_NAME - 9)
    assert re.fullmatch(r"[0-9a-f]{8}", digest)
    assert name == entity_name("n" * 63, "orders", "orders-v1")
    assert name != entity_name("n" * 63, "orders", "orders-v2")


def test_backstage_entities_with_long_names_still_validate_and_refer_to_each_other() -> None:
    product = _renamed("n" * 63, "orders")
    validators = _backstage_validators()
    entities = build_backstage_entities(product, _domain("sales"))
    own = {f"{e['kind'].lower()}:default/{e['metadata']['name']}" for e in entities}
    upstream = "resource:default/crm.customers.customers-v1"
    for entity in entities:
        name = entity["metadata"]["name"]
        assert len(name) <= MAX_NAME and BACKSTAGE_NAME.fullmatch(name), name
        assert _errors(validators[entity["kind"]], entity) == [], name
        spec = entity["spec"]
        references = [*spec.get("dependsOn", []), *spec.get("providesApis", [])]
        references += [spec["system"]] if "system" in spec else []
        assert set(references) - {upstream} <= own, name


def test_products_whose_dash_joined_names_match_get_distinct_backstage_entities() -> None:
    items = [(_renamed("sales-eu", "orders"), None), (_renamed("sales", "eu-orders"), None)]
    items = [(product, _domain(product.spec.domain)) for product, _ in items]
    text = EXPORT_FORMATS["backstage"].render_many(items, EVENT_TIME)
    entities = [e for e in yaml.safe_load_all(text) if e]
    keys = [(e["kind"], e["metadata"]["namespace"], e["metadata"]["name"]) for e in entities]
    assert len(keys) == len(set(keys))
    systems = [name for kind, _, name in keys if kind == "System"]
    assert systems == ["sales-eu.orders", "sales.eu-orders"]
    assert ("Resource", "default", "sales-eu.orders.orders-v1") in keys
    assert ("Resource", "default", "sales.eu-orders.orders-v1") in keys
    assert [kind for kind, _, _ in keys].count("Domain") == 1


def test_openlineage_names_external_sources_by_scheme_authority_and_path() -> None:
    assert external_dataset("postgres", "postgresql://u:p@db.crm:5432/crm") == (
        "postgres://db.crm:5432",
        "crm",
    )
    assert external_dataset("s3", "s3://acme-support/tickets/") == ("s3://acme-support", "tickets")
    assert external_dataset("jdbc", "jdbc:sqlserver://ledger.finance:1433;databaseName=gl") == (
        "mssql://ledger.finance:1433",
        "gl",
    )
    assert external_dataset("kafka", "orders-topic") == ("kafka://", "orders-topic")


def test_openlineage_names_a_postgres_table_a_sql_pipeline_reads_database_schema_table() -> None:
    uri = "postgresql://shop-db.sales:5432/shop"
    assert external_dataset("postgres", uri, "billing.orders") == (
        "postgres://shop-db.sales:5432",
        "shop.billing.orders",
    )
    # A table without a schema is in public, where PostgreSQL resolves it
    assert external_dataset("postgres", uri, "orders") == (
        "postgres://shop-db.sales:5432",
        "shop.public.orders",
    )


@pytest.mark.parametrize(
    ("uri", "dataset"),
    [
        ("postgresql://u:pa/ss@host/db", ("postgres://host", "db")),
        ("postgresql://u:p@host:5432/db?password=x&auth=y", ("postgres://host:5432", "db")),
        ("https://h/p#access_token=x", ("https://h", "p")),
        ("admin:s3cret@db:5432/shop", ("postgres://", "db:5432/shop")),
        ("jdbc:sqlserver://h:1433;password=x;databaseName=gl", ("mssql://h:1433", "gl")),
        ("jdbc:sqlserver://h:1433;DATABASE=gl?x=y", ("mssql://h:1433", "gl")),
        # An '@' after a ':' reads as user:password@host: ambiguous here, and read the way that
        # can leak nothing (a password may hold ';'): the wrong host, no parameter.
        ("jdbc:sqlserver://h:1433;databaseName=a@b;password=x", ("mssql://b", "")),
        ("jdbc:sqlserver://h:1433;user=sa;password=x", ("mssql://h:1433", "")),
        ("postgresql://h;databaseName=x", ("postgres://h", "")),
    ],
)
def test_openlineage_names_a_source_from_its_redacted_uri_and_jdbc_database_name(
    uri: str, dataset: tuple[str, str]
) -> None:
    assert external_dataset("postgres", uri) == dataset


def test_openlineage_has_a_job_per_pipeline_and_a_dataset_per_port() -> None:
    events = build_openlineage(_product(), event_time=EVENT_TIME)
    jobs = [e["job"]["name"] for e in events if "job" in e]
    datasets = [e["dataset"]["name"] for e in events if "dataset" in e]
    assert jobs == ["sales/orders/ingest", "sales/orders/backfill"]
    assert {e["job"]["namespace"] for e in events if "job" in e} == {"dataproduct-operator"}
    assert datasets == ["orders.orders-v1", "orders.daily-revenue"]
    assert events[0]["job"]["facets"]["ownership"]["owners"] == [{"name": "team:sales-data"}]
    assert {e["eventTime"] for e in events} == {EVENT_TIME}


def test_an_unknown_export_format_names_the_valid_ones() -> None:
    with pytest.raises(UserError, match="odps, odcs, backstage, openlineage"):
        export_format("csv")


def test_several_products_render_as_one_stream_or_one_array() -> None:
    items = [(_product(), None), (_product("crm-customers.yaml"), None)]
    odps = list(yaml.safe_load_all(EXPORT_FORMATS["odps"].render_many(items, EVENT_TIME)))
    assert [d["id"] for d in odps] == ["sales.orders", "crm.customers"]
    events = json.loads(EXPORT_FORMATS["openlineage"].render_many(items, EVENT_TIME))
    assert len(events) == 2 + 2 + 1 + 1


# -- the CLI ----------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_exports_odcs_contracts_of_a_manifest() -> None:
    result = _run("export", "--format", "odcs", str(MESH_FIXTURE / "sales-orders.yaml"))
    assert result.exit_code == 0, result.output
    contracts = [c for c in yaml.safe_load_all(result.stdout) if c]
    assert [c["id"] for c in contracts] == ["sales.orders.orders-v1", "sales.orders.daily-revenue"]
    validator = _odcs_validator()
    for contract in contracts:
        OpenDataContractStandard.model_validate(contract)
        assert _errors(validator, contract) == []


def test_cli_export_writes_a_file(tmp_path: Path) -> None:
    output = tmp_path / "events.json"
    result = _run(
        "export", "-f", "openlineage", "-o", str(output), str(MESH_FIXTURE / "sales-orders.yaml")
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(output.read_text())) == 4


def test_cli_export_names_jobs_in_the_openlineage_namespace_it_is_given() -> None:
    manifest = str(MESH_FIXTURE / "sales-orders.yaml")
    given = _run("export", "-f", "openlineage", "--openlineage-namespace", "prod-eu", manifest)
    assert given.exit_code == 0, given.output
    jobs = [e["job"] for e in json.loads(given.stdout) if "job" in e]
    assert [(j["namespace"], j["name"]) for j in jobs] == [
        ("prod-eu", "sales/orders/ingest"),
        ("prod-eu", "sales/orders/backfill"),
    ]
    default = _run("export", "-f", "openlineage", manifest)
    assert {e["job"]["namespace"] for e in json.loads(default.stdout) if "job" in e} == {
        "dataproduct-operator"
    }
    refused = CliRunner().invoke(
        main, ["export", "-f", "openlineage", "--openlineage-namespace", "a b", manifest]
    )
    assert refused.exit_code != 0 and "the OpenLineage namespace must be" in refused.output


def test_cli_export_takes_domains_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "mesh.yaml"
    manifest.write_text(
        (MESH_FIXTURE / "domains.yaml").read_text()
        + "\n---\n"
        + (MESH_FIXTURE / "sales-orders.yaml").read_text()
    )
    result = _run("export", "--format", "backstage", str(manifest))
    assert result.exit_code == 0, result.output
    kinds = [e["kind"] for e in yaml.safe_load_all(result.stdout) if e]
    assert kinds[0] == "Domain"


def test_cli_export_of_an_unknown_format_lists_the_formats() -> None:
    result = _run("export", "--format", "csv", str(MESH_FIXTURE / "sales-orders.yaml"))
    assert result.exit_code != 0
    assert "odps, odcs, backstage, openlineage" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--namespace", "sales", "--name", "orders", str(MESH_FIXTURE / "sales-orders.yaml")],
        [],
        ["--namespace", "sales"],
    ],
)
def test_cli_export_needs_exactly_one_source(args: list[str]) -> None:
    result = _run("export", "--format", "odps", *args)
    assert result.exit_code == 2
    assert "MANIFEST" in result.output


def test_cli_export_of_a_manifest_without_products_says_so(tmp_path: Path) -> None:
    result = _run("export", "--format", "odps", str(MESH_FIXTURE / "domains.yaml"))
    assert result.exit_code == 1
    assert "holds no DataProduct" in result.output
