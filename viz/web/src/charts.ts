// Sparklines and the workload page's traffic chart, drawn as SVG.

import { svg } from "./dom";

// path maps values onto a box at (x0, y0) of w × h, with max at the top.
function path(values: number[], max: number, x0: number, y0: number, w: number, h: number): string {
  const v = values.length > 1 ? values : [values[0] ?? 0, values[0] ?? 0];
  const step = w / (v.length - 1);
  const top = max > 0 ? max : 1;
  return v.map((x, i) => (i === 0 ? "M" : "L") + (x0 + i * step).toFixed(1) + "," + (y0 + h - (x / top) * h).toFixed(1)).join(" ");
}

// sparkline draws requests per second over the window (oldest first).
export function sparkline(values: number[] | undefined, width = 120, height = 24): SVGElement {
  const v = values && values.length > 0 ? values : [0];
  const max = Math.max(...v);
  const s = svg("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  s.appendChild(svg("title", {}, `requests per second over the last ${v.length} ticks; max ${max.toFixed(1)}`));
  s.appendChild(svg("path", { d: path(v, max, 0, 1, width, height - 2), class: "spark-line" }));
  return s;
}

export interface Line { name: string; cls: string; values: number[] }

// chart draws several series on one axis, with a legend and the maximum.
export function chart(lines: Line[], intervalSeconds: number, width = 640, height = 160): SVGElement {
  const left = 8, top = 20, bottom = 20;
  const n = Math.max(...lines.map((l) => l.values.length), 2);
  const max = Math.max(...lines.flatMap((l) => l.values), 0);
  const s = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  s.appendChild(svg("title", {}, "requests per second"));
  s.appendChild(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  s.appendChild(svg("text", { x: width - 4, y: 12, class: "axis-label end" }, "max " + max.toFixed(1) + " rps"));
  const minutes = ((n - 1) * intervalSeconds) / 60;
  s.appendChild(svg("text", { x: left, y: height - 4, class: "axis-label" }, minutes >= 1 ? `-${Math.round(minutes)} min` : `-${Math.round(minutes * 60)} s`));
  s.appendChild(svg("text", { x: width - 4, y: height - 4, class: "axis-label end" }, "now"));
  lines.forEach((l, i) => {
    const g = svg("g", { class: "series " + l.cls, "data-series": l.name });
    g.appendChild(svg("path", { d: path(l.values, max, left, top, width - left, height - top - bottom), class: "chart-line" }));
    g.appendChild(svg("rect", { x: left + i * 120, y: 4, width: 10, height: 10, class: "legend-key" }));
    g.appendChild(svg("text", { x: left + 14 + i * 120, y: 13, class: "legend" }, l.name));
    s.appendChild(g);
  });
  return s;
}
