"""Draw a graph: DOT text, or SVG/PNG rendered here (no graphviz needed).

Columns are topological generations; each edge is labelled ``port: Type``. With the JSON-lines
log of a run, each box shows its time or that it came from the cache.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import networkx as nx

from .events import read_log
from .graph import Graph, parse_link

BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN = 230, 58, 120, 34, 24


def _overlay(log_path: str | None) -> dict[str, str]:
    if not log_path:
        return {}
    out: dict[str, str] = {}
    for e in read_log(log_path):
        if e.get("event") == "done":
            out[e["node"]] = f"{e.get('seconds', 0):.2f}s"
        elif e.get("event") == "cached":
            out[e["node"]] = f"cached ({e.get('tier', '')})"
        elif e.get("event") == "error":
            out[e["node"]] = "error"
    return out


def _layout(graph: Graph) -> dict[str, tuple[int, int]]:
    g = graph.nx_graph()
    try:
        gens = list(nx.topological_generations(g))
    except nx.NetworkXUnfeasible:
        gens = [list(g.nodes)]
    pos = {}
    for c, gen in enumerate(gens):
        for r, nid in enumerate(sorted(gen)):
            pos[nid] = (MARGIN + c * (BOX_W + COL_GAP), MARGIN + r * (BOX_H + ROW_GAP))
    return pos


def _edges(graph: Graph) -> list[tuple[str, str, str]]:
    try:
        ports = graph.port_types()
    except Exception:  # noqa: BLE001 - draw what we can of an invalid graph
        ports = {}
    out = []
    for nid, ns in graph.spec.nodes.items():
        for port, link in ns.inputs.items():
            src = parse_link(link)
            if src is None or src[0] not in graph.spec.nodes:
                continue
            t = ports.get(src[0], ({}, {}))[1].get(src[1])
            out.append((src[0], nid, f"{src[1]}->{port}: {t.describe() if t else '?'}"))
    return out


def to_dot(graph: Graph, overlay: dict[str, str]) -> str:
    lines = [f'digraph "{graph.name}" {{', "  rankdir=LR;", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    for nid, ns in graph.spec.nodes.items():
        extra = f"\\n{overlay[nid]}" if nid in overlay else ""
        lines.append(f'  "{nid}" [label="{nid}\\n{ns.type}{extra}"];')
    for a, b, label in _edges(graph):
        lines.append(f'  "{a}" -> "{b}" [label="{label}", fontsize=10];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(graph: Graph, overlay: dict[str, str]) -> str:
    pos = _layout(graph)
    W = max(x for x, _ in pos.values()) + BOX_W + MARGIN if pos else 200
    H = max(y for _, y in pos.values()) + BOX_H + MARGIN if pos else 100
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="Helvetica" '
             'font-size="12">', '<rect width="100%" height="100%" fill="white"/>']
    for a, b, label in _edges(graph):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        x1, y1, x2, y2 = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        mx = (x1 + x2) / 2
        parts.append(f'<path d="M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}" stroke="#556" fill="none" '
                     'marker-end="url(#a)"/>')
        parts.append(f'<text x="{mx}" y="{(y1 + y2) / 2 - 4}" font-size="9" text-anchor="middle" '
                     f'fill="#335">{escape(label)}</text>')
    for nid, (x, y) in pos.items():
        fill = "#e8f6e8" if overlay.get(nid, "").startswith("cached") else "#eef3fb"
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="#446"/>')
        parts.append(f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(nid)}</text>')
        parts.append(f'<text x="{x + 8}" y="{y + 34}">{escape(graph.spec.nodes[nid].type)}</text>')
        if nid in overlay:
            parts.append(f'<text x="{x + 8}" y="{y + 50}" fill="#a40">{escape(overlay[nid])}</text>')
    parts.insert(1, '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
                 '<path d="M0,0 L8,4 L0,8 z" fill="#556"/></marker></defs>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def to_png(graph: Graph, overlay: dict[str, str], path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    pos = _layout(graph)
    W = max(x for x, _ in pos.values()) + BOX_W + MARGIN if pos else 200
    H = max(y for _, y in pos.values()) + BOX_H + MARGIN if pos else 100
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    try:
        font, small = ImageFont.load_default(size=13), ImageFont.load_default(size=10)
    except TypeError:
        font = small = ImageFont.load_default()
    for a, b, label in _edges(graph):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        p1, p2 = (x1 + BOX_W, y1 + BOX_H // 2), (x2, y2 + BOX_H // 2)
        d.line([p1, ((p1[0] + p2[0]) // 2, p1[1]), ((p1[0] + p2[0]) // 2, p2[1]), p2], fill=(80, 80, 100), width=2)
        d.polygon([p2, (p2[0] - 8, p2[1] - 4), (p2[0] - 8, p2[1] + 4)], fill=(80, 80, 100))
        d.text(((p1[0] + p2[0]) // 2 - 50, (p1[1] + p2[1]) // 2 - 12), label, fill=(40, 40, 120), font=small)
    for nid, (x, y) in pos.items():
        fill = (232, 246, 232) if overlay.get(nid, "").startswith("cached") else (238, 243, 251)
        d.rounded_rectangle([x, y, x + BOX_W, y + BOX_H], radius=8, fill=fill, outline=(60, 60, 100), width=2)
        d.text((x + 8, y + 5), nid, fill="black", font=font)
        d.text((x + 8, y + 22), graph.spec.nodes[nid].type, fill=(50, 50, 50), font=font)
        if nid in overlay:
            d.text((x + 8, y + 39), overlay[nid], fill=(170, 60, 0), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def render(graph: Graph, path: Path, log_path: str | None = None) -> None:
    overlay = _overlay(log_path)
    suffix = path.suffix.lower()
    if suffix == ".dot":
        path.write_text(to_dot(graph, overlay))
    elif suffix == ".svg":
        path.write_text(to_svg(graph, overlay))
    elif suffix == ".png":
        to_png(graph, overlay, path)
    else:
        raise ValueError(f"viz: unsupported output {path.name!r}; use .png, .svg or .dot")


def summary(graph: Graph) -> dict[str, Any]:
    return {"nodes": len(graph.spec.nodes), "edges": len(_edges(graph))}
