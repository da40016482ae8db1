"""The lineage graph: nodes and edges from the products' inputs, what unlisted products reveal,
and neighbourhoods."""

from __future__ import annotations

import pytest

from dataproduct_operator.catalog.lineage import (
    Health,
    LineageGraph,
    NodeKind,
    UnknownNode,
    build_lineage,
    neighbourhood,
    redact_uri,
    short_uri,
)
from dataproduct_operator.catalog.urls import lineage_url, product_url
from tests.lineage_helpers import EXAMPLE_PRODUCTS, URI_CASES, external, listed, product, reads


def edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.label) for e in graph.edges}


def test_every_example_product_is_a_node_named_with_its_domain_and_page_link() -> None:
    graph = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
    products = [n for n in graph.nodes if n.kind is NodeKind.PRODUCT]
    assert {(n.id, n.label, n.sublabel, n.href) for n in products} == {
        (f"product:{p.namespace}/{p.name}", p.name, p.spec.domain, product_url(p.namespace, p.name))
        for p in EXAMPLE_PRODUCTS
    }


def test_example_inputs_are_edges_labelled_by_port_or_external_input_name() -> None:
    graph = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
    assert edges(graph) == {
        ("external:postgres:postgresql://crm-db.crm:5432/crm", "product:crm/customers", "crm-db"),
        ("external:s3:s3://acme-support/tickets/", "product:crm/customers", "support-tickets"),
        ("external:postgres:postgresql://shop-db.sales:5432/shop", "product:sales/orders", "raw"),
        ("product:crm/customers", "product:sales/orders", "customers-v1"),
        ("product:sales/orders", "product:finance/revenue", "daily-revenue"),
        ("external:jdbc:jdbc:sqlserver://ledger.finance:1433", "product:finance/revenue", "ledger"),
        ("product:crm/customers", "product:marketing/customer-segments", "customers-v1"),
        ("product:sales/orders", "product:marketing/customer-segments", "orders-v1"),
    }


def test_external_sources_are_labelled_by_type_and_host_path_and_link_to_their_lineage() -> None:
    graph = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
    node = graph.node("external:postgres:postgresql://shop-db.sales:5432/shop")
    assert node.kind is NodeKind.EXTERNAL
    assert node.label == "postgres shop-db.sales/shop"
    assert node.href == lineage_url(focus=node.id)
    assert node.health is Health.UNKNOWN


def test_the_graph_is_sorted_and_the_same_whatever_order_the_products_come_in() -> None:
    graph = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
    assert [n.id for n in graph.nodes] == sorted(n.id for n in graph.nodes)
    assert list(graph.edges) == sorted(graph.edges, key=lambda e: (e.source, e.target, e.label))
    assert build_lineage(EXAMPLE_PRODUCTS[::-1], listed=listed) == graph
    assert build_lineage(EXAMPLE_PRODUCTS[1:] + EXAMPLE_PRODUCTS[:1], listed=listed) == graph


def test_an_external_source_read_by_two_products_is_one_shared_node() -> None:
    graph = build_lineage(
        [
            product("a", "one", external("db", "postgres", "postgresql://u:one@db.example:5432/x")),
            product("b", "two", external("shop", "postgres", "postgresql://db.example:5432/x")),
        ],
        listed=listed,
    )
    externals = [n for n in graph.nodes if n.kind is NodeKind.EXTERNAL]
    assert [n.id for n in externals] == ["external:postgres:postgresql://db.example:5432/x"]
    assert edges(graph) == {
        (externals[0].id, "product:a/one", "db"),
        (externals[0].id, "product:b/two", "shop"),
    }


@pytest.mark.parametrize(("uri", "redacted", "short"), URI_CASES)
def test_uris_lose_credentials_query_and_parameters(uri: str, redacted: str, short: str) -> None:
    assert redact_uri(uri) == redacted
    assert short_uri(uri) == short


def test_credentials_in_an_external_uri_appear_nowhere_in_the_graph() -> None:
    uri = "postgresql://admin:hunter2@db.example.com:5432/app?password=hunter2"
    graph = build_lineage([product("a", "one", external("db", "postgres", uri))], listed=listed)
    (node,) = [n for n in graph.nodes if n.kind is NodeKind.EXTERNAL]
    assert node.label == "postgres db.example.com/app"
    assert "hunter2" not in repr(graph)
    assert "admin" not in repr(graph)


def test_a_reference_without_namespace_reads_from_the_consumers_namespace() -> None:
    graph = build_lineage(
        [product("sales", "orders"), product("sales", "daily", reads("orders"))], listed=listed
    )
    assert edges(graph) == {("product:sales/orders", "product:sales/daily", "out")}


def test_a_reference_to_a_product_that_does_not_exist_looks_like_an_unlisted_one() -> None:
    """Else the graph would tell which names of hidden products exist."""
    gone = build_lineage([product("a", "one", reads("gone", "zz", port="v1"))], listed=listed)
    hidden = build_lineage(
        [
            product("a", "one", reads("gone", "zz", port="v1")),
            product("zz", "gone", hidden=True),
        ],
        listed=listed,
    )
    assert gone == hidden
    node = gone.node("unlisted:1")
    assert (node.kind, node.label, node.href, node.health) == (
        NodeKind.UNLISTED,
        "unlisted product",
        None,
        Health.UNKNOWN,
    )
    assert edges(gone) == {("unlisted:1", "product:a/one", "")}
    assert "gone" not in repr(gone) and "zz" not in repr(gone)


def test_a_hidden_product_in_a_chain_is_an_anonymous_unlisted_node_without_its_inputs() -> None:
    graph = build_lineage(
        [
            product("a", "start"),
            product(
                "secret-ns",
                "secret-name",
                reads("start", "a"),
                external("db", "vault-kind", "postgresql://hidden-host/db"),
                reads("also-gone", "zz"),
                hidden=True,
                description="Secret description",
            ),
            product("c", "end", reads("secret-name", "secret-ns", port="p1")),
        ],
        listed=listed,
    )
    unlisted = graph.node("unlisted:1")
    assert (unlisted.kind, unlisted.label, unlisted.sublabel, unlisted.href) == (
        NodeKind.UNLISTED,
        "unlisted product",
        "",
        None,
    )
    assert unlisted.health is Health.UNKNOWN
    assert {n.id for n in graph.nodes} == {"product:a/start", "unlisted:1", "product:c/end"}
    assert edges(graph) == {("unlisted:1", "product:c/end", "")}  # not even the port name
    for secret in ("secret-ns", "secret-name", "Secret description", "hidden-host", "vault-kind"):
        assert secret not in repr(graph)


def test_a_hidden_product_no_listed_product_reads_is_not_shown() -> None:
    graph = build_lineage(
        [product("a", "start"), product("b", "hidden", reads("start", "a"), hidden=True)],
        listed=listed,
    )
    assert [n.id for n in graph.nodes] == ["product:a/start"]
    assert graph.edges == ()


def test_two_products_reading_one_hidden_product_share_its_unlisted_node() -> None:
    graph = build_lineage(
        [
            product("h", "hidden", hidden=True),
            product("h", "other-hidden", hidden=True),
            product("a", "one", reads("hidden", "h")),
            product("b", "two", reads("hidden", "h"), reads("other-hidden", "h")),
        ],
        listed=listed,
    )
    assert edges(graph) == {
        ("unlisted:1", "product:a/one", ""),
        ("unlisted:1", "product:b/two", ""),
        ("unlisted:2", "product:b/two", ""),
    }


@pytest.mark.parametrize(
    ("ready", "health"),
    [(True, Health.HEALTHY), (False, Health.UNHEALTHY), (None, Health.UNKNOWN)],
)
def test_health_follows_the_ready_condition(ready: bool | None, health: Health) -> None:
    graph = build_lineage([product("a", "one", ready=ready)], listed=listed)
    assert graph.node("product:a/one").health is health


def test_a_cycle_is_kept_as_it_is() -> None:
    graph = build_lineage(
        [product("a", "one", reads("two")), product("a", "two", reads("one"))], listed=listed
    )
    assert edges(graph) == {
        ("product:a/one", "product:a/two", "out"),
        ("product:a/two", "product:a/one", "out"),
    }


def test_lookup_helpers_give_nodes_and_their_edges() -> None:
    graph = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
    assert "product:sales/orders" in graph
    assert "product:nowhere/none" not in graph
    assert graph.node("product:sales/orders").label == "orders"
    assert {e.source for e in graph.incoming("product:sales/orders")} == {
        "external:postgres:postgresql://shop-db.sales:5432/shop",
        "product:crm/customers",
    }
    assert {e.target for e in graph.outgoing("product:sales/orders")} == {
        "product:finance/revenue",
        "product:marketing/customer-segments",
    }
    with pytest.raises(UnknownNode):
        graph.node("product:nowhere/none")


# source -> a -> b -> c -> d, and a -> sibling (a reader of a, like b)
CHAIN = build_lineage(
    [
        product("n", "a", external("feed", "s3", "s3://bucket/feed")),
        product("n", "b", reads("a")),
        product("n", "c", reads("b")),
        product("n", "d", reads("c")),
        product("n", "sibling", reads("a")),
    ],
    listed=listed,
)
SOURCE = "external:s3:s3://bucket/feed"


def ids(graph: LineageGraph) -> set[str]:
    return {n.id for n in graph.nodes}


@pytest.mark.parametrize(
    ("focus", "hops", "expected"),
    [
        ("product:n/b", 0, {"b"}),
        ("product:n/b", 1, {"a", "b", "c"}),
        ("product:n/b", 2, {SOURCE, "a", "b", "c", "d"}),
        ("product:n/a", 1, {SOURCE, "a", "b", "sibling"}),
        ("product:n/d", 2, {"b", "c", "d"}),
        (SOURCE, 1, {SOURCE, "a"}),
        (SOURCE, 2, {SOURCE, "a", "b", "sibling"}),
    ],
)
def test_a_neighbourhood_walks_upstream_and_downstream_never_both_on_one_path(
    focus: str, hops: int, expected: set[str]
) -> None:
    around = neighbourhood(CHAIN, focus, hops)
    assert ids(around) == {n if ":" in n else f"product:n/{n}" for n in expected}
    assert set(around.edges) == {
        e for e in CHAIN.edges if e.source in ids(around) and e.target in ids(around)
    }
    assert list(around.nodes) == [n for n in CHAIN.nodes if n.id in ids(around)]


def test_a_neighbourhood_in_a_cycle_ends() -> None:
    graph = build_lineage(
        [product("a", "one", reads("two")), product("a", "two", reads("one"))], listed=listed
    )
    around = neighbourhood(graph, "product:a/one", 10)
    assert ids(around) == {"product:a/one", "product:a/two"}
    assert len(around.edges) == 2


def test_an_unknown_focus_is_an_unknown_node_error() -> None:
    with pytest.raises(UnknownNode) as raised:
        neighbourhood(CHAIN, "product:n/nowhere", 1)
    assert isinstance(raised.value, LookupError)
    assert raised.value.node_id == "product:n/nowhere"


def test_hops_below_zero_are_refused() -> None:
    with pytest.raises(ValueError, match="hops"):
        neighbourhood(CHAIN, "product:n/a", -1)
