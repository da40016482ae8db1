"""The lineage graph drawn as SVG, on the server (layer ``catalog``, pure: no I/O).

A layered left-to-right drawing (Sugiyama style): cycles are broken by reversing the back edges
of a depth-first search (for the layout only), each node's layer is its longest path from the
sources, edges longer than one layer pass through placeholder points so other nodes make room
for them, the order within each layer comes from barycentre sweeps that keep the ordering with
the fewest crossings, and the heights come from pulling each node towards its neighbours while
keeping boxes apart. The result is one standalone SVG document that also works inline in an
HTML page: its ``<style>`` gives the default look, scoped to ``svg.lineage`` so a page can
override it. Output is deterministic: the same graph always gives the same bytes.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from xml.sax.saxutils import escape

from dataproduct_operator.catalog.lineage import Health, LineageGraph, Node, NodeKind

NODE_WIDTH = 220
NODE_HEIGHT = 48
LAYER_GAP = 80  # room between columns for the edges' curves
NODE_GAP = 20
EDGE_GAP = 10  # room a passing edge takes in a column
MARGIN = 24
ORDER_SWEEPS = 4  # pairs of down and up sweeps; more rarely removes another crossing
PLACE_SWEEPS = 4
PLACEHOLDERS_PER_NODE = 20
PORT_SPREAD = 16  # edges meet a box within this distance of its middle, not all in one point
LOOP_RISE = 20

LABEL_SIZE = 13
SUBLABEL_SIZE = 11
TEXT_PAD = 10
DOT_SPACE = 14  # a product's health dot sits left of its text

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

STYLE = """
svg.lineage{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
svg.lineage .background{fill:#ffffff}
svg.lineage .edge{fill:none;stroke:#94a3b8;stroke-width:1.5}
svg.lineage .edge-back{stroke-dasharray:6 3}
svg.lineage .edge-focus{stroke:#2563eb;stroke-width:2}
svg.lineage .arrow{fill:#94a3b8}
svg.lineage .arrow-focus{fill:#2563eb}
svg.lineage .node rect{fill:#ffffff;stroke:#64748b;stroke-width:1.5}
svg.lineage .node-external rect{fill:#f0fdfa;stroke:#0f766e}
svg.lineage .node-unlisted rect{fill:#f1f5f9;stroke:#94a3b8;
stroke-dasharray:5 4}
svg.lineage .health-unhealthy rect{fill:#fef2f2;stroke:#dc2626;stroke-width:2}
svg.lineage .focus rect{stroke:#2563eb;stroke-width:3}
svg.lineage a:hover rect,svg.lineage a:focus rect{stroke:#2563eb;stroke-width:2.5}
svg.lineage .label{font-size:13px;font-weight:600;fill:#0f172a}
svg.lineage .sublabel{font-size:11px;fill:#475569}
svg.lineage .node-unlisted text{fill:#64748b}
svg.lineage .node-unlisted .label{font-style:italic;font-weight:400}
svg.lineage .health-unhealthy .label{fill:#991b1b}
svg.lineage .dot{fill:#94a3b8}
svg.lineage .health-healthy .dot{fill:#16a34a}
svg.lineage .health-unhealthy .dot{fill:#dc2626}
svg.lineage .empty{font-size:14px;fill:#64748b}
""".strip()

_HEALTH_TEXT = {
    Health.HEALTHY: "Ready, data healthy",
    Health.UNHEALTHY: "Not ready, or data unhealthy",
    Health.UNKNOWN: "Health unknown",
}


def render_svg(graph: LineageGraph, *, focus: str | None = None) -> str:
    """The graph as a standalone SVG document; ``focus`` (a node id) is highlighted.

    A ``focus`` that is not in the graph highlights nothing.
    """
    if not graph.nodes:
        return _empty_svg()
    layout = _layout(graph)
    width, height = layout.width, layout.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="Lineage graph">',
        f"<style>{STYLE}</style>",
        "<defs>",
        _marker("lineage-arrow", "arrow"),
        _marker("lineage-arrow-focus", "arrow-focus"),
        "</defs>",
        f'<rect class="background" width="{width}" height="{height}"/>',
        '<g class="edges">',
    ]
    for path in layout.paths:
        parts.append(_edge(graph, path, focus))
    parts.append("</g>")
    parts.append('<g class="nodes">')
    for node in graph.nodes:
        x, y = layout.boxes[node.id]
        parts.append(_node(node, x, y, focused=node.id == focus))
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _empty_svg() -> str:
    width, height = 320, 80
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="Lineage graph">\n'
        f"<style>{STYLE}</style>\n"
        f'<rect class="background" width="{width}" height="{height}"/>\n'
        f'<text class="empty" x="{width // 2}" y="{height // 2}" text-anchor="middle"'
        ' dominant-baseline="middle">No data products yet</text>\n'
        "</svg>\n"
    )


def _marker(marker_id: str, css_class: str) -> str:
    # userSpaceOnUse keeps arrows one size whatever the stroke width of the edge.
    return (
        f'<marker id="{marker_id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9"'
        ' markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path class="{css_class}" d="M0,0L10,5L0,10z"/></marker>'
    )


def _edge(graph: LineageGraph, path: _Path, focus: str | None) -> str:
    classes = ["edge"]
    if path.back:
        classes.append("edge-back")
    focused = focus is not None and focus in (path.source, path.target)
    if focused:
        classes.append("edge-focus")
    marker = "lineage-arrow-focus" if focused else "lineage-arrow"
    source, target = graph.node(path.source), graph.node(path.target)
    title = f"{source.label} \u2192 {target.label} ({', '.join(path.labels)})"
    return (
        f'<path class="{" ".join(classes)}" data-source="{_attr(path.source)}"'
        f' data-target="{_attr(path.target)}" d="{path.d}" marker-end="url(#{marker})">'
        f"<title>{_text(title)}</title></path>"
    )


def _node(node: Node, x: int, y: int, *, focused: bool) -> str:
    classes = ["node", f"node-{node.kind}", f"health-{node.health}"]
    if focused:
        classes.append("focus")
    text_x = TEXT_PAD + (DOT_SPACE if node.kind is NodeKind.PRODUCT else 0)
    room = NODE_WIDTH - text_x - TEXT_PAD
    body = [
        f"<title>{_text(_hover_text(node))}</title>",
        f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8"/>',
    ]
    if node.kind is NodeKind.PRODUCT:
        body.append(f'<circle class="dot" cx="{TEXT_PAD + 4}" cy="{NODE_HEIGHT // 2}" r="4"/>')
    label = _fit(node.label, room, LABEL_SIZE, bold=True)
    if node.sublabel:
        sublabel = _fit(node.sublabel, room, SUBLABEL_SIZE, bold=False)
        body.append(f'<text class="label" x="{text_x}" y="21">{_text(label)}</text>')
        body.append(f'<text class="sublabel" x="{text_x}" y="37">{_text(sublabel)}</text>')
    else:
        body.append(f'<text class="label" x="{text_x}" y="29">{_text(label)}</text>')
    inner = "".join(body)
    if node.href is not None:
        inner = f'<a href="{_attr(node.href)}">{inner}</a>'
    return (
        f'<g class="{" ".join(classes)}" data-node-id="{_attr(node.id)}"'
        f' transform="translate({x},{y})">{inner}</g>'
    )


def _hover_text(node: Node) -> str:
    lines = [node.label]
    if node.kind is NodeKind.PRODUCT:
        lines.append(f"Domain: {node.sublabel}")
        lines.append(_HEALTH_TEXT[node.health])
    elif node.sublabel:
        lines.append(node.sublabel)
    if node.description:
        lines.append(node.description)
    return "\n".join(lines)


def _clean(value: str) -> str:
    """Characters XML 1.0 cannot carry (control characters) become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", value)


def _text(value: str) -> str:
    return escape(_clean(value))


def _attr(value: str) -> str:
    return escape(_clean(value), {'"': "&quot;", "\n": "&#10;", "\t": "&#9;", "\r": "&#13;"})


# Advance widths in em, close to DejaVu Sans: one of the wider common fonts, so an estimate
# from them keeps text inside its box in narrower fonts too.
_NARROW = dict.fromkeys("il.,:;'|!", 0.32) | dict.fromkeys("fjtI()[]/- ", 0.40)
_WIDE = dict.fromkeys("mw", 0.98) | dict.fromkeys("MW", 1.0) | {"r": 0.42, "_": 0.5}


def _char_width(char: str) -> float:
    width = _NARROW.get(char) or _WIDE.get(char)
    if width is not None:
        return width
    if char.isascii():
        return 0.76 if char.isupper() else 0.64
    return 1.0


def _fit(text: str, room: float, size: int, *, bold: bool) -> str:
    """``text``, cut short with an ellipsis where it would overflow ``room`` pixels."""
    scale = size * (1.1 if bold else 1.0)
    widths = [_char_width(char) * scale for char in text]
    if sum(widths) <= room:
        return text
    budget = room - _char_width("\u2026") * scale
    used = 0.0
    for end, width in enumerate(widths):
        used += width
        if used > budget:
            return text[:end].rstrip() + "\u2026"
    return text


def _num(value: float) -> str:
    text = f"{round(value, 1) + 0.0:.1f}"
    return text.removesuffix(".0")


@dataclass(frozen=True)
class _Path:
    source: str
    target: str
    labels: tuple[str, ...]
    d: str
    back: bool


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    boxes: dict[str, tuple[int, int]]  # node id -> top-left corner
    paths: tuple[_Path, ...]


def _layout(graph: LineageGraph) -> _Layout:
    ids = [node.id for node in graph.nodes]
    index = {node_id: i for i, node_id in enumerate(ids)}
    count = len(ids)
    labels: dict[tuple[int, int], list[str]] = {}
    for edge in graph.edges:
        labels.setdefault((index[edge.source], index[edge.target]), []).append(edge.label)
    flows = sorted(pair for pair in labels if pair[0] != pair[1])
    back = _back_edges(count, flows)
    flipped = [pair in back for pair in flows]
    forward = [(v, u) if flip else (u, v) for (u, v), flip in zip(flows, flipped, strict=True)]
    layer = _layers(count, forward)

    chains, vertex_layer = _chains(forward, layer)
    total = len(vertex_layer)
    preds: list[list[int]] = [[] for _ in range(total)]
    succs: list[list[int]] = [[] for _ in range(total)]
    for chain in chains:
        for a, b in pairwise(chain):
            succs[a].append(b)
            preds[b].append(a)

    layers: list[list[int]] = [[] for _ in range(max(layer, default=0) + 1)]
    for vertex in range(total):
        layers[vertex_layer[vertex]].append(vertex)
    layers = _order(layers, preds, succs, vertex_layer)
    ys = _place(layers, preds, succs, count)

    tops = [ys[v] - (NODE_HEIGHT / 2 if v < count else 0) for v in range(total)]
    bottoms = [ys[v] + (NODE_HEIGHT / 2 if v < count else 0) for v in range(total)]
    loops = any(u == v for u, v in labels)
    shift = MARGIN + (LOOP_RISE if loops else 0) - min(tops)
    ys = [float(round(y + shift)) for y in ys]
    width = 2 * MARGIN + len(layers) * NODE_WIDTH + (len(layers) - 1) * LAYER_GAP
    height = round(max(bottoms) + shift + MARGIN)

    def left(vertex: int) -> int:
        return MARGIN + vertex_layer[vertex] * (NODE_WIDTH + LAYER_GAP)

    boxes = {ids[v]: (left(v), round(ys[v] - NODE_HEIGHT / 2)) for v in range(count)}
    ports = _ports(chains, ys)

    paths: list[_Path] = []
    for (u, v), flip, chain, (out_y, in_y) in zip(forward, flipped, chains, ports, strict=True):
        anchors: list[tuple[float, float]] = [(left(chain[0]) + NODE_WIDTH, out_y)]
        for vertex in chain[1:-1]:
            anchors += [(left(vertex), ys[vertex]), (left(vertex) + NODE_WIDTH, ys[vertex])]
        anchors.append((left(chain[-1]), in_y))
        source, target = (v, u) if flip else (u, v)
        if flip:
            anchors.reverse()
        edge_labels = tuple(labels[source, target])
        paths.append(_Path(ids[source], ids[target], edge_labels, _curve(anchors), back=flip))
    for u, v in sorted(pair for pair in labels if pair[0] == pair[1]):
        x, y = boxes[ids[u]]
        paths.append(_Path(ids[u], ids[v], tuple(labels[u, v]), _loop(x, y), back=True))
    paths.sort(key=lambda path: (path.source, path.target))
    return _Layout(width=width, height=height, boxes=boxes, paths=tuple(paths))


def _chains(
    edges: Sequence[tuple[int, int]], layer: list[int]
) -> tuple[list[list[int]], list[int]]:
    """Each edge as the vertices it passes, and the layer of every vertex.

    Edges longer than one layer get a placeholder vertex in every layer they cross, shortest
    edges first, within a budget: a deep chain with edges back to its start would otherwise
    need a number of placeholders that grows with the square of its depth. Edges over the
    budget are drawn straight across.
    """
    vertex_layer = list(layer)
    chains = [[u, v] for u, v in edges]
    budget = PLACEHOLDERS_PER_NODE * len(layer)
    spans = [layer[v] - layer[u] - 1 for u, v in edges]
    for k in sorted(range(len(edges)), key=lambda k: (spans[k], k)):
        if spans[k] > budget:
            break
        budget -= spans[k]
        u, v = edges[k]
        chains[k] = [u, *range(len(vertex_layer), len(vertex_layer) + spans[k]), v]
        vertex_layer.extend(range(layer[u] + 1, layer[v]))
    return chains, vertex_layer


def _back_edges(count: int, edges: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """Edges that close a cycle, by an iterative depth-first search (chains can be long)."""
    out: list[list[int]] = [[] for _ in range(count)]
    has_pred = [False] * count
    for u, v in edges:
        out[u].append(v)
        has_pred[v] = True
    # Starting from the sources makes the reversed edge the one that points back upstream.
    roots = [v for v in range(count) if not has_pred[v]] + [v for v in range(count) if has_pred[v]]
    state = [0] * count  # 0 unvisited, 1 on the stack, 2 done
    back: set[tuple[int, int]] = set()
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(out[root]))]
        while stack:
            u, successors = stack[-1]
            for v in successors:
                if state[v] == 1:
                    back.add((u, v))
                elif state[v] == 0:
                    state[v] = 1
                    stack.append((v, iter(out[v])))
                    break
            else:
                state[u] = 2
                stack.pop()
    return back


def _layers(count: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Longest path from the sources; a source then moves right, next to its first reader."""
    out: list[list[int]] = [[] for _ in range(count)]
    indegree = [0] * count
    for u, v in edges:
        out[u].append(v)
        indegree[v] += 1
    layer = [0] * count
    sources = [v for v in range(count) if indegree[v] == 0]
    queue = deque(sources)
    while queue:
        u = queue.popleft()
        for v in out[u]:
            layer[v] = max(layer[v], layer[u] + 1)
            indegree[v] -= 1
            if indegree[v] == 0:
                queue.append(v)
    # An external source read only by a product deep in the graph would otherwise sit in the
    # first column and send a long edge across everything in between.
    for u in sources:
        if out[u]:
            layer[u] = min(layer[v] for v in out[u]) - 1
    return layer


def _order(
    layers: list[list[int]],
    preds: list[list[int]],
    succs: list[list[int]],
    vertex_layer: list[int],
) -> list[list[int]]:
    """Order each layer by barycentre sweeps, down and up; the ordering with fewest crossings."""
    position = [0.0] * len(vertex_layer)

    def number(layer: list[int]) -> None:
        for i, vertex in enumerate(layer):
            position[vertex] = (i + 0.5) / len(layer)

    def sweep(layer: list[int], neighbours: list[list[int]]) -> list[int]:
        keyed = []
        for i, vertex in enumerate(layer):
            around = neighbours[vertex]
            centre = sum(position[w] for w in around) / len(around) if around else position[vertex]
            keyed.append((centre, i, vertex))
        keyed.sort()
        ordered = [vertex for _, _, vertex in keyed]
        number(ordered)
        return ordered

    for layer in layers:
        number(layer)
    best = [list(layer) for layer in layers]
    fewest = _crossings(layers, succs, vertex_layer)
    for _ in range(ORDER_SWEEPS):
        for direction in ("down", "up"):
            if direction == "down":
                for i in range(1, len(layers)):
                    layers[i] = sweep(layers[i], preds)
            else:
                for i in range(len(layers) - 2, -1, -1):
                    layers[i] = sweep(layers[i], succs)
            crossings = _crossings(layers, succs, vertex_layer)
            if crossings < fewest:
                fewest = crossings
                best = [list(layer) for layer in layers]
        if fewest == 0:
            break
    return best


def _crossings(layers: list[list[int]], succs: list[list[int]], vertex_layer: list[int]) -> int:
    """Edge crossings between neighbouring layers, counted as inversions (Fenwick tree).

    Edges left without placeholders (over the budget) span more layers and are not counted.
    """
    rank = [0] * len(vertex_layer)
    for layer in layers:
        for i, vertex in enumerate(layer):
            rank[vertex] = i
    crossings = 0
    for depth, (upper, lower) in enumerate(pairwise(layers)):
        ends = sorted(
            (rank[u], rank[v]) for u in upper for v in succs[u] if vertex_layer[v] == depth + 1
        )
        tree = [0] * (len(lower) + 1)
        for seen, (_, end) in enumerate(ends):
            at_most = 0
            i = end + 1
            while i > 0:
                at_most += tree[i]
                i -= i & -i
            crossings += seen - at_most
            i = end + 1
            while i <= len(lower):
                tree[i] += 1
                i += i & -i
    return crossings


def _place(
    layers: list[list[int]], preds: list[list[int]], succs: list[list[int]], count: int
) -> list[float]:
    """Vertical centres: each vertex pulled towards its neighbours, boxes kept apart."""
    total = len(preds)
    half = [(NODE_HEIGHT + NODE_GAP) / 2 if v < count else EDGE_GAP / 2 for v in range(total)]
    ys = [0.0] * total
    for layer in layers:
        offset = 0.0
        for previous, vertex in pairwise(layer):
            offset += half[previous] + half[vertex]
            ys[vertex] = offset
        for vertex in layer:
            ys[vertex] -= offset / 2

    both = [p + s for p, s in zip(preds, succs, strict=True)]
    for _ in range(PLACE_SWEEPS):
        for layer in layers[1:]:
            _align(layer, preds, ys, half)
        for layer in reversed(layers[:-1]):
            _align(layer, succs, ys, half)
    for layer in layers:
        _align(layer, both, ys, half)
    return ys


def _align(
    layer: list[int], neighbours: list[list[int]], ys: list[float], half: list[float]
) -> None:
    """Least-squares move towards the neighbours' mean height, in order and apart.

    With ``z = y - (the separations above)`` the constraints become ``z`` non-decreasing, so
    pool-adjacent-violators finds the optimum in one pass.
    """
    targets: list[float] = []
    offsets: list[float] = []
    offset = 0.0
    for i, vertex in enumerate(layer):
        if i:
            offset += half[layer[i - 1]] + half[vertex]
        around = neighbours[vertex]
        wanted = sum(ys[w] for w in around) / len(around) if around else ys[vertex]
        targets.append(wanted - offset)
        offsets.append(offset)
    blocks: list[list[float]] = []  # [sum, size]
    for target in targets:
        blocks.append([target, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, size = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += size
    i = 0
    for total, size in blocks:
        for _ in range(int(size)):
            ys[layer[i]] = total / size + offsets[i]
            i += 1


def _ports(chains: list[list[int]], ys: list[float]) -> list[tuple[float, float]]:
    """Where each edge leaves its first box and enters its last, spread along the box side.

    Ends on one side are ordered by where their other end lies, so they do not cross there.
    """
    sides: dict[tuple[int, bool], list[tuple[float, int]]] = {}
    for number, chain in enumerate(chains):
        sides.setdefault((chain[0], True), []).append((ys[chain[1]], number))
        sides.setdefault((chain[-1], False), []).append((ys[chain[-2]], number))
    ends: dict[tuple[int, bool], float] = {}
    for (vertex, leaving), attached in sides.items():
        attached.sort()
        step = min(8.0, 2 * PORT_SPREAD / (len(attached) - 1)) if len(attached) > 1 else 0.0
        for k, (_, number) in enumerate(attached):
            ends[number, leaving] = ys[vertex] + (k - (len(attached) - 1) / 2) * step
    return [(ends[number, True], ends[number, False]) for number in range(len(chains))]


def _curve(anchors: list[tuple[float, float]]) -> str:
    """Cubic Béziers through the anchors, leaving and arriving horizontally."""
    x, y = anchors[0]
    parts = [f"M{_num(x)},{_num(y)}"]
    for (x0, y0), (x1, y1) in pairwise(anchors):
        if abs(y1 - y0) < 0.05:
            parts.append(f"L{_num(x1)},{_num(y1)}")
        else:
            middle = _num((x0 + x1) / 2)
            parts.append(f"C{middle},{_num(y0)} {middle},{_num(y1)} {_num(x1)},{_num(y1)}")
    return "".join(parts)


def _loop(x: int, y: int) -> str:
    """A product that reads its own output: out of its right side, back in through its top."""
    right = x + NODE_WIDTH
    return (
        f"M{right},{y + 12}"
        f"C{right + LOOP_RISE + 6},{y + 12} {right - 28},{y - LOOP_RISE - 6} {right - 28},{y}"
    )
