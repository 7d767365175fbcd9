// The topology graph: workloads as boxes in layers (callers left of what
// they call), edges as arrows labelled with mTLS, success and RPS; edges
// not all mTLS dashed; failing edges red.

import type { Edge } from "./api";
import { svg, route } from "./dom";
import { health, pct } from "./format";

const BOX_W = 150, BOX_H = 44, COL_GAP = 150, ROW_GAP = 36, PAD = 20, ARC_GAP = 34;

function key(ns: string, name: string): string {
  return ns + "/" + name;
}

// layers assigns every node its longest distance from a node nobody calls
// (cycles are cut by visiting each node once per walk).
function layers(nodes: string[], edges: Edge[]): Map<string, number> {
  const out = new Map<string, string[]>();
  const indeg = new Map<string, number>(nodes.map((n) => [n, 0]));
  for (const e of edges) {
    const s = key(e.srcNamespace, e.src), d = key(e.dstNamespace, e.dst);
    if (s === d) continue;
    out.set(s, [...(out.get(s) ?? []), d]);
    indeg.set(d, (indeg.get(d) ?? 0) + 1);
  }
  const depth = new Map<string, number>();
  const walk = (n: string, d: number, seen: Set<string>) => {
    if (seen.has(n)) return;
    if ((depth.get(n) ?? -1) >= d) return;
    depth.set(n, d);
    seen.add(n);
    for (const m of out.get(n) ?? []) walk(m, d + 1, seen);
    seen.delete(n);
  };
  const roots = nodes.filter((n) => (indeg.get(n) ?? 0) === 0);
  for (const r of roots.length > 0 ? roots : nodes.slice(0, 1)) walk(r, 0, new Set());
  for (const n of nodes) if (!depth.has(n)) depth.set(n, 0);
  return depth;
}

// topology draws edges among workloads; focus (ns/name) highlights one.
export function topology(edges: Edge[], namespace: string, focus?: string): SVGElement {
  const names = new Set<string>();
  for (const e of edges) {
    names.add(key(e.srcNamespace, e.src));
    names.add(key(e.dstNamespace, e.dst));
  }
  const nodes = [...names].sort();
  const depth = layers(nodes, edges);
  const cols = new Map<number, string[]>();
  for (const n of nodes) cols.set(depth.get(n)!, [...(cols.get(depth.get(n)!) ?? []), n]);
  const ncols = Math.max(...cols.keys(), 0) + 1;
  const nrows = Math.max(...[...cols.values()].map((c) => c.length), 1);
  // Edges that skip a layer arc above or below the boxes, alternately, each
  // further out than the last, so that they cross no box.
  const skips = edges.filter((e) => Math.abs(depth.get(key(e.dstNamespace, e.dst))! - depth.get(key(e.srcNamespace, e.src))!) > 1);
  const above = Math.ceil(skips.length / 2), below = Math.floor(skips.length / 2);
  const top = PAD + above * ARC_GAP, boxesH = nrows * BOX_H + (nrows - 1) * ROW_GAP;
  const width = PAD * 2 + ncols * BOX_W + (ncols - 1) * COL_GAP;
  const height = top + boxesH + below * ARC_GAP + PAD;
  const pos = new Map<string, { x: number; y: number }>();
  for (const [c, col] of cols) {
    const offset = ((nrows - col.length) * (BOX_H + ROW_GAP)) / 2;
    col.forEach((n, i) => pos.set(n, { x: PAD + c * (BOX_W + COL_GAP), y: top + offset + i * (BOX_H + ROW_GAP) }));
  }
  const root = svg("svg", { class: "topology", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "topology of " + namespace });
  const defs = svg("defs");
  for (const cls of ["ok", "warn", "fail", "none"]) {
    defs.appendChild(
      svg("marker", { id: "arrow-" + cls, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 10, markerHeight: 10, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse", class: "arrow " + cls },
        svg("path", { d: "M0,0 L10,5 L0,10 z" })),
    );
  }
  root.appendChild(defs);
  if (nodes.length === 0) {
    root.appendChild(svg("text", { x: PAD, y: PAD + 14, class: "empty" }, "no traffic between workloads in the time window"));
    return root;
  }
  const edgeLayer = svg("g", { class: "edges" });
  for (const e of edges) {
    const s = pos.get(key(e.srcNamespace, e.src))!, t = pos.get(key(e.dstNamespace, e.dst))!;
    const h = health(e.success);
    const skip = skips.indexOf(e);
    let d0: string, lx: number, ly: number;
    if (skip >= 0) {
      // Out of the source's top (or bottom), around the boxes, into the target's.
      const up = skip % 2 === 0, k = Math.floor(skip / 2) + 1;
      const x1 = s.x + BOX_W / 2 + 20, x2 = t.x + BOX_W / 2 - 20;
      const y1 = up ? s.y : s.y + BOX_H, y2 = up ? t.y : t.y + BOX_H;
      const yArc = up ? top - k * ARC_GAP : top + boxesH + k * ARC_GAP;
      d0 = `M${x1},${y1} C${x1},${yArc} ${x2},${yArc} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = (y1 + y2) / 8 + (3 * yArc) / 4 + (up ? -4 : 12);
    } else if (t.x > s.x) {
      const x1 = s.x + BOX_W, y1 = s.y + BOX_H / 2, x2 = t.x, y2 = t.y + BOX_H / 2, mx = (x1 + x2) / 2;
      d0 = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      lx = mx;
      ly = (y1 + y2) / 2 - 6;
    } else {
      // Backwards or within a layer: from the source's bottom to the target's.
      const x1 = s.x + BOX_W / 2, y1 = s.y + BOX_H, x2 = t.x + BOX_W / 2, y2 = t.y + BOX_H, yb = Math.max(y1, y2) + ROW_GAP;
      d0 = `M${x1},${y1} C${x1},${yb} ${x2},${yb} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = yb - 4;
    }
    const g = svg("g", {
      class: "edge " + h + (e.secured ? " secured" : " plaintext") + (h === "fail" ? " failing" : ""),
      "data-src": e.src, "data-dst": e.dst, "data-src-namespace": e.srcNamespace, "data-dst-namespace": e.dstNamespace,
      "data-secured": String(e.secured), "data-success": e.success === null ? "" : e.success.toFixed(4),
    });
    g.appendChild(svg("title", {}, `${e.src} → ${e.dst}: ${pct(e.success)} success, ${e.rps.toFixed(1)} rps, ` +
      (e.secured ? `mTLS (client ${e.clientId ?? "?"}, server ${e.serverId ?? "?"})` : "not all mTLS")));
    g.appendChild(svg("path", { d: d0, class: "edge-line", "marker-end": `url(#arrow-${h})` }));
    g.appendChild(svg("text", { x: lx, y: ly, class: "edge-label" }, (e.secured ? "mTLS · " : "plaintext · ") + pct(e.success) + " · " + e.rps.toFixed(1) + " rps"));
    edgeLayer.appendChild(g);
  }
  root.appendChild(edgeLayer);
  const nodeLayer = svg("g", { class: "nodes" });
  for (const n of nodes) {
    const p = pos.get(n)!;
    const [ns, name] = [n.slice(0, n.indexOf("/")), n.slice(n.indexOf("/") + 1)];
    const a = svg("a", { href: route("ns", ns, "deploy", name) });
    const g = svg("g", { class: "node" + (n === focus ? " focus" : ""), "data-name": name, "data-namespace": ns });
    g.appendChild(svg("rect", { x: p.x, y: p.y, width: BOX_W, height: BOX_H, rx: 6 }));
    g.appendChild(svg("text", { x: p.x + BOX_W / 2, y: p.y + 19, class: "node-name" }, name));
    g.appendChild(svg("text", { x: p.x + BOX_W / 2, y: p.y + 35, class: "node-ns" }, ns === namespace ? "deploy" : ns));
    a.appendChild(g);
    nodeLayer.appendChild(a);
  }
  root.appendChild(nodeLayer);
  return root;
}
