// The viz query API (viz/metricsapi), read with same-origin GETs. Paths are
// relative, so the page works at any prefix (the API server's service proxy,
// weft viz dashboard's local proxy).

export interface Resource { type: string; name?: string; namespace?: string }

export interface Signals {
  requests: number;
  successes: number;
  success: number | null;
  rps: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
  tcpConn: number;
  readBytesPerSec: number;
  writeBytesPerSec: number;
  tlsShare: number | null;
  spark?: number[];
}

export interface Row extends Signals { namespace?: string; type: string; name: string; pods: number; meshed: number }

export interface RouteRow extends Signals {
  route: string;
  authority: string;
  actualRequests: number;
  actualSuccess: number | null;
  actualRps: number;
}

export interface Edge extends Signals {
  srcNamespace: string;
  src: string;
  dstNamespace: string;
  dst: string;
  secured: boolean;
  clientId?: string;
  serverId?: string;
}

export interface Series { resource: Resource; intervalSeconds: number; inbound: number[]; outbound: number[] }

// One row of `weft viz top` (viz/metricsapi TopRow).
export interface TopRow {
  source: string;
  destination: string;
  method: string;
  path: string;
  count: number;
  successes: number;
  success: number;
  bestUs: number;
  worstUs: number;
  lastUs: number;
  latency: [string, string, string]; // best, worst, last
}

export interface Top {
  namespace: string;
  resource: string;
  name: string;
  duration: string;
  max: number;
  events: number;
  requests: number;
  complete: boolean;
  rows: TopRow[];
}

// ApiError is a failed answer: its HTTP status and the API's reason
// (e.g. TapDisabled, Busy) when it gave one.
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly reason: string, readonly detail: string) {
    super(message);
  }
}

export type Params = Record<string, string | undefined>;

export async function get<T>(path: string, params: Params): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const resp = await fetch("api/v1/" + path + "?" + q.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const text = await resp.text();
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    let reason = "";
    try {
      const j = JSON.parse(text) as { error?: string; message?: string; reason?: string };
      msg = j.error ?? j.message ?? msg;
      reason = j.reason ?? "";
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(path + ": " + msg, resp.status, reason, msg);
  }
  return JSON.parse(text) as T;
}

export const stat = (p: Params) => get<Row[]>("stat", p);
export const routes = (p: Params) => get<RouteRow[]>("routes", p);
export const edges = (p: Params) => get<Edge[]>("edges", p);
export const series = (p: Params) => get<Series>("series", p);
export const top = (p: Params) => get<Top>("top", p);
