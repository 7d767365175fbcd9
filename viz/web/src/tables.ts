// Tables of golden signals, workloads and routes.

import type { Row, RouteRow, Signals } from "./api";
import { el, link, type Child } from "./dom";
import { health, ms, pct, rps } from "./format";
import { sparkline } from "./charts";

function successCell(s: Signals): HTMLTableCellElement {
  const h = health(s.success);
  return el("td", { class: "num success " + h, "data-success": s.success === null ? "" : s.success.toFixed(4) }, pct(s.success));
}

function signalCells(s: Signals): Child[] {
  return [
    successCell(s),
    el("td", { class: "num" }, rps(s.rps)),
    el("td", { class: "num" }, ms(s.latencyP50Ms)),
    el("td", { class: "num" }, ms(s.latencyP95Ms)),
    el("td", { class: "num" }, ms(s.latencyP99Ms)),
    el("td", { class: "num" }, String(s.tcpConn)),
  ];
}

const SIGNAL_HEADS = ["Success", "RPS", "P50", "P95", "P99", "TCP"];

function table(cls: string, heads: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (rows.length === 0) return el("p", { class: "empty " + cls }, empty);
  return el("table", { class: cls },
    el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

// statTable lists stat rows; href makes a row's name a link (or not).
export function statTable(cls: string, first: string, rows: Row[], href: (r: Row) => string | null, empty: string): HTMLElement {
  const trs = rows.map((r) => {
    const h = href(r);
    const name = r.type === "ns" ? r.name : r.type + "/" + r.name;
    return el("tr", { "data-name": r.name, "data-type": r.type, class: "health-" + health(r.success) },
      el("td", { class: "name" }, h ? link(h, name) : name),
      el("td", { class: "num" }, r.type === "svc" || r.type === "authority" ? "-" : `${r.meshed}/${r.pods}`),
      ...signalCells(r),
      el("td", { class: "spark-cell" }, sparkline(r.spark)));
  });
  return table(cls, [first, "Meshed", ...SIGNAL_HEADS, "Traffic"], trs, empty);
}

// routeTable lists routes; failing ones (success below the threshold) are
// marked with the class "failing" and a visible badge.
export function routeTable(cls: string, rows: { client?: string; route: RouteRow }[], empty: string): HTMLElement {
  const withClient = rows.some((r) => r.client !== undefined);
  const trs = rows.map(({ client, route: r }) => {
    const h = health(r.success);
    return el("tr", { "data-route": r.route, "data-authority": r.authority, "data-client": client, class: "route health-" + h + (h === "fail" ? " failing" : "") },
      withClient ? el("td", { class: "name" }, client ?? "") : null,
      el("td", { class: "name" }, r.route, h === "fail" ? el("span", { class: "badge fail" }, "failing") : null),
      el("td", { class: "authority" }, r.authority),
      ...signalCells(r).slice(0, 5),
      el("td", { class: "num" }, pct(r.actualSuccess)));
  });
  const heads = [...(withClient ? ["Client"] : []), "Route", "Authority", ...SIGNAL_HEADS.slice(0, 5), "Actual success"];
  return table(cls, heads, trs, empty);
}
