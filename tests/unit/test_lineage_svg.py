"""The lineage graph as SVG: well-formed, linked, escaped, laid out without overlaps, fast."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from itertools import pairwise
from typing import Any

import pytest

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.catalog.lineage import (
    LineageGraph,
    NodeKind,
    build_lineage,
    neighbourhood,
)
from dataproduct_operator.catalog.svg import NODE_HEIGHT, NODE_WIDTH, render_svg
from tests.helpers import assert_golden
from tests.lineage_helpers import (
    EXAMPLE_PRODUCTS,
    external,
    listed,
    product,
    reads,
)

SVG = "{http://www.w3.org/2000/svg}"
EXAMPLE_GRAPH = build_lineage(EXAMPLE_PRODUCTS, listed=listed)
ORDERS = "product:sales/orders"

EDGE_CASES = build_lineage(
    [
        product("a", "raw", external("db", "postgres", "postgresql://u:pw@db/app"), ready=True),
        product("a", "secret", reads("raw"), hidden=True),
        product("b", "clean", reads("secret", "a"), reads("gone", "zz"), ready=False),
        product("c", "loop1", reads("loop2"), reads("clean", "b"), ready=True),
        product("c", "loop2", reads("loop1")),
        product("d", "self", reads("self"), external("db", "postgres", "postgresql://db/app")),
    ],
    listed=listed,
)


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it well-formed
    assert root.tag == f"{SVG}svg"
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    assert root.attrib["viewBox"] == f"0 0 {width} {height}"
    return root


def node_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-node-id"]: g for g in root.iter(f"{SVG}g") if "data-node-id" in g.attrib}


def boxes(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Top-left corner of every node's box."""
    found = {}
    for node_id, group in node_groups(root).items():
        match = re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)", group.attrib["transform"])
        assert match, group.attrib["transform"]
        found[node_id] = (float(match[1]), float(match[2]))
    return found


def edge_paths(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "edge" in p.attrib.get("class", "").split()]


def assert_well_drawn(graph: LineageGraph, svg: str) -> ET.Element:
    """Well-formed, one group per node with its link, no boxes overlapping, tidy numbers."""
    root = parse(svg)
    groups = node_groups(root)
    assert set(groups) == {n.id for n in graph.nodes}
    for node in graph.nodes:
        group = groups[node.id]
        classes = group.attrib["class"].split()
        assert {"node", f"node-{node.kind}", f"health-{node.health}"} <= set(classes)
        links = group.findall(f"{SVG}a")
        if node.href is None:
            assert links == []
        else:
            assert [a.attrib["href"] for a in links] == [node.href]
    corners = sorted(boxes(root).values())
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    for x, y in corners:
        assert x >= 0 and x + NODE_WIDTH <= width
        assert y >= 0 and y + NODE_HEIGHT <= height
    for (x1, y1), (x2, y2) in pairwise(corners):
        if x1 == x2:
            assert y2 >= y1 + NODE_HEIGHT, "boxes in one column overlap"
        else:
            assert x2 >= x1 + NODE_WIDTH, "columns overlap"
    for number in re.findall(r' (?:d|transform)="([^"]*)"', svg):
        for value in re.findall(r"-?\d+(?:\.\d+)?", number):
            assert re.fullmatch(r"-?\d+(\.\d)?", value), value
    return root


def test_the_example_mesh_renders_as_its_golden_svg() -> None:
    svg = render_svg(EXAMPLE_GRAPH)
    assert_well_drawn(EXAMPLE_GRAPH, svg)
    assert_golden(svg, "lineage/example-mesh.svg")


def test_a_focused_neighbourhood_renders_as_its_golden_svg() -> None:
    around = neighbourhood(EXAMPLE_GRAPH, ORDERS, 1)
    svg = render_svg(around, focus=ORDERS)
    root = assert_well_drawn(around, svg)
    assert "focus" in node_groups(root)[ORDERS].attrib["class"].split()
    assert_golden(svg, "lineage/orders-neighbourhood.svg")


def test_rendering_is_deterministic() -> None:
    again = build_lineage(EXAMPLE_PRODUCTS[::-1], listed=listed)
    assert render_svg(again, focus=ORDERS) == render_svg(EXAMPLE_GRAPH, focus=ORDERS)


def test_the_focus_node_and_its_edges_are_highlighted() -> None:
    root = parse(render_svg(EXAMPLE_GRAPH, focus=ORDERS))
    focused = [g for g in node_groups(root).values() if "focus" in g.attrib["class"].split()]
    assert [g.attrib["data-node-id"] for g in focused] == [ORDERS]
    for path in edge_paths(root):
        touches = ORDERS in (path.attrib["data-source"], path.attrib["data-target"])
        assert ("edge-focus" in path.attrib["class"].split()) == touches


def test_edges_are_curves_from_the_sources_right_side_to_the_targets_left_side() -> None:
    root = parse(render_svg(EXAMPLE_GRAPH))
    corners = boxes(root)
    paths = edge_paths(root)
    assert len(paths) == len(EXAMPLE_GRAPH.edges)
    for path in paths:
        d = path.attrib["d"]
        assert "C" in d
        assert path.attrib["marker-end"] == "url(#lineage-arrow)"
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
        (sx, sy), (tx, ty) = (
            corners[path.attrib["data-source"]],
            corners[path.attrib["data-target"]],
        )
        assert numbers[0] == sx + NODE_WIDTH and sy <= numbers[1] <= sy + NODE_HEIGHT
        assert numbers[-2] == tx and ty <= numbers[-1] <= ty + NODE_HEIGHT
    assert root.find(f"{SVG}defs/{SVG}marker[@id='lineage-arrow']") is not None


def test_cycles_self_loops_and_unlisted_products_are_drawn() -> None:
    svg = render_svg(EDGE_CASES, focus="product:b/clean")
    root = assert_well_drawn(EDGE_CASES, svg)
    kinds = {node_id: g.attrib["class"].split() for node_id, g in node_groups(root).items()}
    assert "node-unlisted" in kinds["unlisted:1"]
    assert "node-unlisted" in kinds["unlisted:2"]  # the missing reference, drawn alike
    pairs = {(p.attrib["data-source"], p.attrib["data-target"]) for p in edge_paths(root)}
    assert pairs == {(e.source, e.target) for e in EDGE_CASES.edges}
    back = [p for p in edge_paths(root) if "edge-back" in p.attrib["class"].split()]
    assert {(p.attrib["data-source"], p.attrib["data-target"]) for p in back} == {
        ("product:c/loop2", "product:c/loop1"),
        ("product:d/self", "product:d/self"),
    }
    assert "secret" not in svg and "pw@" not in svg


def test_unhealthy_products_are_marked_and_styled_red() -> None:
    svg = render_svg(EDGE_CASES)
    groups = node_groups(parse(svg))
    assert "health-unhealthy" in groups["product:b/clean"].attrib["class"].split()
    assert "health-healthy" in groups["product:a/raw"].attrib["class"].split()
    assert "health-unknown" in groups["product:c/loop2"].attrib["class"].split()
    assert re.search(r"\.health-unhealthy rect\{[^}]*stroke:#dc2626", svg)


def test_unlisted_products_are_styled_dashed() -> None:
    svg = render_svg(EDGE_CASES)
    rule = re.search(r"\.node-unlisted rect\{([^}]*)\}", svg)
    assert rule and "stroke-dasharray" in rule[1]


def test_text_from_specs_is_escaped() -> None:
    graph = build_lineage(
        [
            product(
                "a",
                "one",
                external("in", "<script>alert(1)</script>", "s3://b/\"'&<x>\x01"),
                description="<script>alert('description')</script> & more",
            )
        ],
        listed=listed,
    )
    svg = render_svg(graph)
    root = assert_well_drawn(graph, svg)
    assert "<script" not in svg
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert any("<script>alert('description')</script> & more" in t for t in titles)
    assert any("<script>alert(1)</script>" in t for t in titles)
    ids = set(node_groups(root))
    assert "external:<script>alert(1)</script>:s3://b/\"'&<x>" in ids


def test_long_labels_are_cut_with_an_ellipsis_and_shown_whole_in_the_title() -> None:
    name = "a-rather-long-data-product-name-of-forty"
    graph = build_lineage([product("a", name)], listed=listed)
    group = node_groups(parse(render_svg(graph)))["product:a/" + name]
    label = group.find(f".//{SVG}text[@class='label']")
    assert label is not None and label.text is not None
    assert label.text.endswith("\u2026")
    assert name.startswith(label.text.removesuffix("\u2026"))
    title = group.find(f".//{SVG}title")
    assert title is not None and title.text is not None
    assert name in title.text


def test_an_empty_mesh_says_so() -> None:
    svg = render_svg(LineageGraph(nodes=(), edges=()))
    root = parse(svg)
    assert [t.text for t in root.iter(f"{SVG}text")] == ["No data products yet"]


def test_the_svg_can_be_embedded_in_an_html_page() -> None:
    svg = render_svg(EXAMPLE_GRAPH)
    assert not svg.startswith("<?xml")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="lineage"')
    # Inline, the SVG's styles apply to the whole page: every rule is scoped to it.
    style = parse(svg).find(f"{SVG}style")
    assert style is not None and style.text is not None
    rules = re.findall(r"([^{}]+)\{", style.text)
    for selector in (s.strip() for rule in rules for s in rule.split(",")):
        assert selector.startswith("svg.lineage"), selector


def generated_mesh(count: int) -> list[DataProduct]:
    """A mesh where each product reads two things: mostly recent products, some sources."""
    products = []
    for i in range(count):
        inputs: list[dict[str, Any]] = []
        for k in range(2):
            # a fixed pseudo-random pattern: reproducible without a random generator
            pick = (i * 7919 + k * 104729) % 997
            if i < 20 or pick % 10 == 0:
                inputs.append(external(f"e{k}", "s3", f"s3://bucket-{pick % 50}/x"))
            else:
                j = i - 1 - pick % min(i, 200)
                inputs.append(reads(f"p{j}", f"ns{j % 10}") | {"name": f"in{k}"})
        products.append(product(f"ns{i % 10}", f"p{i}", *inputs, ready=pick % 9 != 0))
    return products


def test_a_thousand_products_render_in_under_three_seconds_even_on_a_busy_machine() -> None:
    products = generated_mesh(1000)
    started = time.perf_counter()
    graph = build_lineage(products, listed=listed)
    built = time.perf_counter()
    svg = render_svg(graph)
    rendered = time.perf_counter()
    # Shown with `pytest -s`: the number to compare when the layout changes.
    print(  # noqa: T201
        f"\n1000 products, {len(graph.edges)} edges: build_lineage {built - started:.3f}s,"
        f" render_svg {rendered - built:.3f}s, {len(svg) // 1024} KiB"
    )
    assert rendered - built < 3.0
    assert len([n for n in graph.nodes if n.kind is NodeKind.PRODUCT]) == 1000
    assert_well_drawn(graph, svg)


def test_a_deep_chain_reading_back_to_its_start_stays_fast() -> None:
    products = [product("c", "p0")]
    products += [product("c", f"p{i}", reads(f"p{i - 1}"), reads("p0")) for i in range(1, 1000)]
    graph = build_lineage(products, listed=listed)
    started = time.perf_counter()
    svg = render_svg(graph)
    assert time.perf_counter() - started < 3.0
    assert_well_drawn(graph, svg)


@pytest.mark.parametrize("focus", [None, "product:nowhere/none"])
def test_a_focus_not_in_the_graph_highlights_nothing(focus: str | None) -> None:
    svg = render_svg(EXAMPLE_GRAPH, focus=focus)
    assert ' focus"' not in svg and "edge-focus" not in svg.split("</style>")[1]
