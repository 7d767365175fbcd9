// The dashboard's pages: namespaces, one namespace's workloads, topology
// and routes, and one workload.

import * as api from "./api";
import { el, link, route } from "./dom";
import { bytes, health, ms, pct, rps } from "./format";
import { chart } from "./charts";
import { livePanel } from "./live";
import { topology } from "./graph";
import { routeTable, statTable } from "./tables";

export interface Ctx { window: string }

// The workload types a namespace page lists (each one stat call).
const WORKLOAD_TYPES = ["deploy", "sts", "ds"];

function section(title: string, id: string, ...body: (Node | null)[]): HTMLElement {
  return el("section", { id }, el("h2", {}, title), ...body);
}

export async function overview(ctx: Ctx): Promise<HTMLElement> {
  const [rows, edges] = await Promise.all([
    api.stat({ resource: "ns", window: ctx.window }),
    api.edges({ resource: "deploy", window: ctx.window }),
  ]);
  return el("div", { class: "page overview" },
    el("h1", {}, "Namespaces"),
    statTable("namespaces", "Namespace", rows, (r) => route("ns", r.name), "no namespaces with pods yet"),
    section("Topology, all namespaces", "topology", el("div", { class: "graph" }, topology(edges, ""))));
}

export async function namespace(ctx: Ctx, ns: string): Promise<HTMLElement> {
  const stats = await Promise.all(WORKLOAD_TYPES.map((t) => api.stat({ resource: t, namespace: ns, window: ctx.window })));
  const rows = stats.flat();
  const [edges, routeSets] = await Promise.all([
    api.edges({ resource: "deploy", namespace: ns, window: ctx.window }),
    Promise.all(rows.filter((r) => r.type === "deploy").map(async (r) => ({
      client: r.name, routes: await api.routes({ resource: "deploy/" + r.name, namespace: ns, to: "svc", window: ctx.window }),
    }))),
  ]);
  const routeRows = routeSets.flatMap((s) => s.routes.map((rt) => ({ client: s.client, route: rt })));
  const failing = routeRows.filter((r) => health(r.route.success) === "fail").length;
  return el("div", { class: "page namespace" },
    el("p", { class: "crumbs" }, link(route(), "namespaces"), " / ", ns),
    el("h1", {}, "Namespace ", el("span", { class: "ns-name" }, ns)),
    section("Workloads", "workloads", statTable("workloads", "Workload", rows, (r) => route("ns", ns, r.type, r.name), "no workloads in " + ns)),
    section("Topology", "topology", el("div", { class: "graph" }, topology(edges, ns)),
      el("p", { class: "legend-text" }, "Arrows point from client to server. mTLS: all of the pair's traffic was mutual TLS (dashed: some was plaintext). Red: success below 95%, amber: below 99%.")),
    section("Routes (as clients saw them, after retries)" + (failing > 0 ? ` — ${failing} failing` : ""), "routes",
      routeTable("routes", routeRows, "no ServiceProfile route traffic from " + ns + " in the time window")));
}

function card(label: string, value: string, cls = ""): HTMLElement {
  return el("div", { class: "card " + cls }, el("div", { class: "card-value" }, value), el("div", { class: "card-label" }, label));
}

export async function workload(ctx: Ctx, ns: string, type: string, name: string): Promise<HTMLElement> {
  const res = type + "/" + name;
  const base = { namespace: ns, window: ctx.window };
  const [self, inbound, outbound, inRoutes, outRoutes, edges, series] = await Promise.all([
    api.stat({ ...base, resource: res }),
    api.stat({ ...base, resource: type, to: res }),
    api.stat({ ...base, resource: "svc", from: res }),
    api.routes({ ...base, resource: res }),
    api.routes({ ...base, resource: res, to: "svc" }),
    api.edges({ ...base, resource: type }),
    api.series({ resource: res, namespace: ns, window: "10m" }),
  ]);
  const me = self[0];
  const mine = edges.filter((e) => (e.src === name && e.srcNamespace === ns) || (e.dst === name && e.dstNamespace === ns));
  const cards = me
    ? [card("success", pct(me.success), "health-" + health(me.success)), card("requests/s", rps(me.rps)), card("p50", ms(me.latencyP50Ms)),
      card("p95", ms(me.latencyP95Ms)), card("p99", ms(me.latencyP99Ms)), card("TCP connections", String(me.tcpConn)),
      card("meshed pods", `${me.meshed}/${me.pods}`), card("mTLS", pct(me.tlsShare)), card("read", bytes(me.readBytesPerSec)), card("write", bytes(me.writeBytesPerSec))]
    : [el("p", { class: "empty" }, `no ${res} in ${ns}`)];
  return el("div", { class: "page workload", "data-workload": name },
    el("p", { class: "crumbs" }, link(route(), "namespaces"), " / ", link(route("ns", ns), ns), " / ", res),
    el("h1", {}, res),
    el("div", { class: "cards" }, ...cards),
    el("div", { class: "row" },
      section("Traffic, last 10 minutes", "series", chart([
        { name: "inbound rps", cls: "inbound", values: series.inbound },
        { name: "outbound rps", cls: "outbound", values: series.outbound },
      ], series.intervalSeconds, 560, 180)),
      section("Topology", "topology", el("div", { class: "graph" }, topology(mine, ns, ns + "/" + name)))),
    section("Inbound: who calls " + name, "inbound", statTable("inbound", "Client", inbound, (r) => route("ns", ns, r.type, r.name), "no meshed client called " + name + " in the time window")),
    section("Outbound: what " + name + " calls", "outbound", statTable("outbound", "Service", outbound, () => null, name + " called no Service in the time window")),
    section("Inbound routes (as " + name + " served them)", "inbound-routes", routeTable("routes inbound-routes", inRoutes.map((r) => ({ route: r })), "no inbound route metrics for " + name)),
    section("Outbound routes (as " + name + " saw them, after retries)", "outbound-routes", routeTable("routes outbound-routes", outRoutes.map((r) => ({ route: r })), "no outbound route metrics for " + name)),
    livePanel(ns, type, name));
}
