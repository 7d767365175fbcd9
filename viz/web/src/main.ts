// The weft viz dashboard: a hash-routed page that reads the viz query API
// and re-renders every few seconds.
//   #/                       namespaces
//   #/ns/NS                  workloads, topology and routes of NS
//   #/ns/NS/TYPE/NAME        one workload

import { el } from "./dom";
import { namespace, overview, workload, type Ctx } from "./pages";

// REFRESH_MS is how often the current page is fetched again.
const REFRESH_MS = 5000;
const WINDOWS = ["1m", "5m", "15m", "1h"];

const ctx: Ctx = { window: sessionStorage.getItem("weft-window") ?? "1m" };
let timer: number | undefined;
let generation = 0;

function render(): Promise<HTMLElement> {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "").map(decodeURIComponent);
  if (parts[0] === "ns" && parts.length === 2) return namespace(ctx, parts[1]);
  if (parts[0] === "ns" && parts.length === 4) return workload(ctx, parts[1], parts[2], parts[3]);
  return overview(ctx);
}

async function refresh(): Promise<void> {
  const gen = ++generation;
  window.clearTimeout(timer);
  const main = document.getElementById("main")!;
  const status = document.getElementById("status")!;
  try {
    const page = await render();
    if (gen !== generation) return; // a newer refresh (navigation) won
    main.replaceChildren(page);
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "status ok";
    document.body.setAttribute("data-loaded", String(gen));
  } catch (err) {
    if (gen !== generation) return;
    status.textContent = "update failed: " + (err instanceof Error ? err.message : String(err));
    status.className = "status error";
    if (main.childElementCount === 0 || main.querySelector("noscript")) {
      main.replaceChildren(el("p", { class: "error" }, status.textContent));
    }
  }
  timer = window.setTimeout(refresh, REFRESH_MS);
}

function header(): HTMLElement {
  const sel = el("select", { id: "window", "aria-label": "time window" }, ...WINDOWS.map((w) => el("option", { value: w }, "last " + w)));
  sel.value = WINDOWS.includes(ctx.window) ? ctx.window : "1m";
  sel.addEventListener("change", () => {
    ctx.window = sel.value;
    sessionStorage.setItem("weft-window", sel.value);
    void refresh();
  });
  return el("header", {},
    el("a", { href: "#/", class: "brand" }, "weft viz"),
    el("span", { class: "spacer" }),
    sel,
    el("span", { id: "status", class: "status" }, "loading…"));
}

document.addEventListener("DOMContentLoaded", () => {
  document.body.prepend(header());
  window.addEventListener("hashchange", () => void refresh());
  void refresh();
});
