"""A lineage graph for people: lines of text, or one self-contained HTML page (inline SVG,
CSS and a little JavaScript; nothing fetched when it is opened).

The page's layout is computed here: nodes in layers (longest path from the sources, so
every edge points right), an edge across several layers routed through a waypoint in each
(so it runs between the nodes, not through them), each layer ordered by the mean position
of what feeds it.
"""

from __future__ import annotations

import html
import itertools
import json
from collections import defaultdict

from lakegov.lineage.graph import JOB, LineageGraph

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 196, 44, 44, 18, 20
COLOURS = {
    "raw": "#fde7c4",
    "staging": "#e8e2f7",
    "file": "#eeeeee",
    "table": "#d5ecff",
    "job": "#ffffff",
    "domain": "#d9f2dc",
}


def _levels(graph: LineageGraph) -> dict[str, int]:
    """Each node's layer: the longest path from a source (cycles, which lineage should not
    have, are cut where they close)."""
    level: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node in level:
            return level[node]
        parents = [p for p in graph.parents(node) if p not in seen]
        level[node] = 1 + max((depth(p, seen | {node}) for p in parents), default=-1)
        return level[node]

    for node in graph.nodes:
        depth(node)
    return level


def routes(graph: LineageGraph) -> dict[tuple[str, str], list[str]]:
    """Every edge as the chain of layer slots it passes: an edge across several layers gets
    a waypoint in each layer between (``~from~to~k``), so it is routed between the nodes
    instead of through them."""
    level = _levels(graph)
    out: dict[tuple[str, str], list[str]] = {}
    for a, b in sorted(graph.edges):
        span = range(level[a] + 1, max(level[b], level[a] + 1))
        out[(a, b)] = [a, *(f"~{a}~{b}~{k}" for k in span), b]
    return out


def layers(graph: LineageGraph) -> list[list[str]]:
    """Node ids (and edge waypoints, ``~...``) per layer, left to right, each layer ordered
    by the mean position of what feeds it."""
    level = _levels(graph)
    feeds: dict[str, list[str]] = defaultdict(list)
    for chain in routes(graph).values():
        for k, (a, b) in enumerate(itertools.pairwise(chain)):
            if a.startswith("~"):
                level[a] = level[chain[0]] + k
            feeds[b].append(a)
    by_level: dict[int, list[str]] = defaultdict(list)
    for node, lvl in level.items():
        by_level[lvl].append(node)
    ordered: list[list[str]] = []
    position: dict[str, float] = {}
    for lvl in sorted(by_level):

        def key(node: str) -> tuple[float, str]:
            fed = [position[p] for p in feeds.get(node, []) if p in position]
            label = graph.nodes[node].label if node in graph.nodes else node
            return (sum(fed) / len(fed) if fed else 0.0, label)

        row = sorted(by_level[lvl], key=key)
        for i, node in enumerate(row):
            position[node] = float(i)
        ordered.append(row)
    return ordered


def to_text(graph: LineageGraph) -> str:
    """The edges, dataset to dataset through their job, layer by layer."""
    lines = [f"lineage of {', '.join(graph.nodes[f].label for f in graph.focus)}"]
    for row in layers(graph):
        for node_id in row:
            node = graph.nodes.get(node_id)
            if node is None or node.kind != JOB:
                continue
            ins = ", ".join(graph.nodes[p].label for p in graph.parents(node_id)) or "-"
            outs = ", ".join(graph.nodes[c].label for c in graph.children(node_id)) or "-"
            lines.append(f"  {ins}  --[{node.label}]-->  {outs}")
    for node_id, node in sorted(graph.nodes.items()):
        if node.kind == "domain":
            tables = ", ".join(graph.nodes[p].label for p in graph.parents(node_id))
            lines.append(f"  {tables}  --subscribed-->  {node.label}")
    return "\n".join(lines)


def _wrap(text: str, width: int = 27) -> list[str]:
    if len(text) <= width:
        return [text]
    cut = max(text.rfind(c, 0, width) for c in "/._: ")
    cut = cut + 1 if cut > 8 else width
    rest = text[cut:]
    return [text[:cut], rest if len(rest) <= width else rest[: width - 1] + "…"]


def to_html(graph: LineageGraph, title: str) -> str:
    """One HTML page drawing ``graph`` as an SVG, left (upstream) to right (downstream)."""
    rows = layers(graph)
    xy: dict[str, tuple[int, int]] = {}
    for col, row in enumerate(rows):
        for i, member in enumerate(row):
            xy[member] = (MARGIN + col * (NODE_W + GAP_X), MARGIN + i * (NODE_H + GAP_Y))
    width = MARGIN * 2 + max(len(rows), 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(r) for r in rows), default=1) * (NODE_H + GAP_Y) - GAP_Y
    parts = []
    for (a, b), chain in routes(graph).items():
        points = [xy[n] for n in chain]
        # leave a node from its right side, enter one at its left, pass waypoints mid-slot
        d = f"M{points[0][0] + NODE_W},{points[0][1] + NODE_H // 2}"
        prev = (points[0][0] + NODE_W, points[0][1] + NODE_H // 2)
        for n, (x, y) in zip(chain[1:], points[1:], strict=True):
            through = n.startswith("~")
            enter = (x, y + NODE_H // 2)
            mid = (prev[0] + enter[0]) // 2
            d += f" C{mid},{prev[1]} {mid},{enter[1]} {enter[0]},{enter[1]}"
            if through:
                d += f" L{x + NODE_W},{enter[1]}"
                prev = (x + NODE_W, enter[1])
        parts.append(
            f'<path class="edge" data-from="{html.escape(a)}" data-to="{html.escape(b)}" '
            f'd="{d}" marker-end="url(#arrow)"/>'
        )
    for node_id, node in graph.nodes.items():
        x, y = xy[node_id]
        focus = " focus" if node_id in graph.focus else ""
        lines = _wrap(node.label)
        text = "".join(
            f'<tspan x="{x + NODE_W // 2}" dy="{0 if i == 0 else 15}">{html.escape(t)}</tspan>'
            for i, t in enumerate(lines)
        )
        ty = y + NODE_H // 2 + 4 - 7 * (len(lines) - 1)
        parts.append(
            f'<g class="node kind-{node.kind}{focus}" data-id="{html.escape(node_id)}" '
            f'data-kind="{node.kind}"><title>{html.escape(node.detail or node.label)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" '
            f'rx="{20 if node.kind == JOB else 6}" fill="{COLOURS.get(node.kind, "#eee")}"/>'
            f'<text x="{x + NODE_W // 2}" y="{ty}" text-anchor="middle">{text}</text></g>'
        )
    legend = " ".join(
        f'<span class="key" style="background:{c}">{k}</span>' for k, c in COLOURS.items()
    )
    data = json.dumps(graph.to_dict()).replace("</", "<\\/")
    return PAGE.format(
        title=html.escape(title),
        width=width,
        height=height,
        body="\n".join(parts),
        legend=legend,
        data=data,
    )


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 17px; margin: 0 0 6px; }}
.key {{ display: inline-block; padding: 2px 8px; margin-right: 4px; border: 1px solid #999;
  border-radius: 4px; font-size: 12px; }}
svg {{ border: 1px solid #ddd; background: #fcfcfc; margin-top: 10px; }}
.node rect {{ stroke: #666; stroke-width: 1; }}
.node.focus rect {{ stroke: #c62828; stroke-width: 2.5; }}
.node.kind-job rect {{ stroke-dasharray: 4 2; }}
.node text {{ font-size: 12px; pointer-events: none; }}
.node {{ cursor: pointer; }}
.edge {{ fill: none; stroke: #888; stroke-width: 1.4; }}
.dim {{ opacity: 0.25; }}
.edge.lit {{ stroke: #c62828; stroke-width: 2.2; }}
</style></head>
<body>
<h1>{title}</h1>
<div>{legend} &mdash; click a node to follow its lineage; click again to clear.</div>
<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}" role="img" aria-label="{title}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"
 markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>
{body}
</svg>
<script id="lineage-data" type="application/json">{data}</script>
<script>
(function () {{
  "use strict";
  var graph = JSON.parse(document.getElementById("lineage-data").textContent);
  var up = {{}}, down = {{}};
  graph.edges.forEach(function (e) {{
    (down[e.from] = down[e.from] || []).push(e.to);
    (up[e.to] = up[e.to] || []).push(e.from);
  }});
  function reach(start, next) {{
    var seen = {{}}, stack = [start];
    while (stack.length) {{
      var id = stack.pop();
      if (seen[id]) continue;
      seen[id] = true;
      (next[id] || []).forEach(function (n) {{ stack.push(n); }});
    }}
    return seen;
  }}
  var selected = null;
  function show(id) {{
    var lit = {{}};
    if (id !== null) {{
      var a = reach(id, up), b = reach(id, down);
      Object.keys(a).concat(Object.keys(b)).forEach(function (k) {{ lit[k] = true; }});
    }}
    document.querySelectorAll(".node").forEach(function (n) {{
      n.classList.toggle("dim", id !== null && !lit[n.dataset.id]);
    }});
    document.querySelectorAll(".edge").forEach(function (e) {{
      var on = id !== null && lit[e.dataset.from] && lit[e.dataset.to];
      e.classList.toggle("lit", !!on);
      e.classList.toggle("dim", id !== null && !on);
    }});
  }}
  document.querySelectorAll(".node").forEach(function (n) {{
    n.addEventListener("click", function () {{
      selected = selected === n.dataset.id ? null : n.dataset.id;
      show(selected);
    }});
  }});
  document.body.dataset.nodes = String(graph.nodes.length);
}})();
</script>
</body></html>
"""
