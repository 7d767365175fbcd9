// The workload page's live top panel: one bounded tap (GET api/v1/top, 5 s
// through the viz controller's tap Merger) rendered as `weft viz top`'s
// table, run when the page opens, then every LIVE_REFRESH_MS while it stays
// open, at most LIVE_MAX_RUNS times in a row. The panel survives the page's
// own 5 s re-renders: the same element is handed back for the same
// workload.

import * as api from "./api";
import { el, route } from "./dom";
import { health, pct } from "./format";

const LIVE_REFRESH_MS = 10000;
const LIVE_MAX_RUNS = 30; // 5 minutes of taps, then the button resumes
const LIVE_DURATION = "5s";

interface Live {
  key: string;      // the page's hash route
  res: string;      // TYPE/NAME
  ns: string;
  root: HTMLElement;
  body: HTMLElement;
  note: HTMLElement;
  auto: HTMLInputElement;
  timer?: number;
  runs: number;     // automatic runs since the last click
  running: boolean;
  stopped: boolean; // the page was left; coming back restarts the taps
}

let live: Live | undefined;

// livePanel returns the panel of ns/type/name, creating (and starting) it
// when the page shows another workload than last time.
export function livePanel(ns: string, type: string, name: string): HTMLElement {
  const key = route("ns", ns, type, name);
  if (live && live.key === key) {
    if (live.stopped) { // back on the page after leaving it
      live.stopped = false;
      live.runs = 0;
      void run(live);
    }
    return live.root;
  }
  if (live) window.clearTimeout(live.timer);
  const res = type + "/" + name;
  const body = el("div", { class: "live-body" }, el("p", { class: "empty" }, "tapping " + res + " for 5 s…"));
  const note = el("span", { class: "live-note" });
  const auto = el("input", { type: "checkbox", id: "live-auto" });
  auto.checked = true;
  const button = el("button", { type: "button", id: "live-run" }, "Run now");
  const l: Live = { key, res, ns, body, note, auto, runs: 0, running: false, stopped: false,
    root: el("section", { id: "live", "data-resource": res },
      el("h2", {}, "Live top (5 s)"),
      el("div", { class: "live-controls" }, button,
        el("label", { for: "live-auto" }, auto, " refresh every 10 s"), note),
      body,
      el("p", { class: "legend-text" },
        "One 5 s tap of " + res + "'s pods through the viz controller (its own identity; see docs/viz-dashboard.md). Rows below 100% success are marked. In a terminal: ",
        el("code", { class: "command" }, `weft viz top ${res} -n ${ns}`))) };
  button.addEventListener("click", () => { l.runs = 0; void run(l); });
  auto.addEventListener("change", () => {
    l.runs = 0;
    if (auto.checked) schedule(l); else window.clearTimeout(l.timer);
  });
  live = l;
  void run(l);
  return l.root;
}

function schedule(l: Live): void {
  window.clearTimeout(l.timer);
  if (!l.auto.checked || live !== l) return;
  if (l.runs >= LIVE_MAX_RUNS) {
    l.note.textContent = "auto-refresh paused after " + LIVE_MAX_RUNS + " taps: press Run now";
    return;
  }
  l.timer = window.setTimeout(() => {
    // Navigated away: stop tapping.
    if (live !== l || !onPage(l)) {
      l.stopped = true;
      return;
    }
    l.runs++;
    void run(l);
  }, LIVE_REFRESH_MS);
}

function onPage(l: Live): boolean {
  try {
    return decodeURIComponent(location.hash) === decodeURIComponent(l.key);
  } catch {
    return false;
  }
}

async function run(l: Live): Promise<void> {
  if (l.running) return;
  l.running = true;
  l.note.textContent = "tapping…";
  try {
    const t = await api.top({ resource: l.res, namespace: l.ns, duration: LIVE_DURATION });
    l.body.replaceChildren(topTable(t));
    l.root.setAttribute("data-state", "ok");
    l.note.textContent = `${t.requests} requests in ${t.duration}${t.complete ? " (stopped at " + t.max + ")" : ""}, at ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    const e = err instanceof api.ApiError ? err : undefined;
    const msg = e ? e.detail : String(err);
    if (e?.reason === "Busy") {
      // Keep the last table; the next refresh retries.
      l.note.textContent = msg;
    } else {
      l.root.setAttribute("data-state", e?.reason ?? "error");
      l.body.replaceChildren(el("p", { class: e?.status === 503 ? "empty live-unavailable" : "error" }, msg));
      l.note.textContent = "";
      if (e?.reason === "TapDisabled") l.auto.checked = false; // it will not come back by itself
    }
  } finally {
    l.running = false;
  }
  schedule(l);
}

const HEADS = ["Source", "Destination", "Method", "Path", "Count", "Best", "Worst", "Last", "Success"];

function topTable(t: api.Top): HTMLElement {
  if (t.rows.length === 0) return el("p", { class: "empty live-top" }, "no request ended within the tap's " + t.duration);
  const trs = t.rows.map((r) => {
    const h = health(r.success);
    const failing = r.success < 1;
    return el("tr", { "data-source": r.source, "data-method": r.method, "data-path": r.path, "data-success": r.success.toFixed(4),
      class: "top-row health-" + h + (failing ? " failing" : "") },
    el("td", { class: "name" }, r.source),
    el("td", { class: "name" }, r.destination),
    el("td", {}, r.method),
    el("td", { class: "name" }, r.path, failing ? el("span", { class: "badge fail" }, "failing") : null),
    el("td", { class: "num" }, String(r.count)),
    el("td", { class: "num" }, r.latency[0]),
    el("td", { class: "num" }, r.latency[1]),
    el("td", { class: "num" }, r.latency[2]),
    el("td", { class: "num success " + h, "data-success": r.success.toFixed(4) }, pct(r.success)));
  });
  return el("table", { class: "live-top" },
    el("thead", {}, el("tr", {}, ...HEADS.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...trs));
}
