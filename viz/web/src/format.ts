// Number formatting and the thresholds that colour success rates.

// Below FAILING a success rate is marked failing (red); below WARNING, amber.
export const FAILING = 0.95;
export const WARNING = 0.99;

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? "-" : (100 * v).toFixed(2) + "%";
}

export function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? "-" : Math.round(v) + " ms";
}

export function rps(v: number): string {
  return v.toFixed(1) + " rps";
}

export function bytes(v: number): string {
  if (v >= 1 << 20) return (v / (1 << 20)).toFixed(1) + " MiB/s";
  if (v >= 1 << 10) return (v / (1 << 10)).toFixed(1) + " KiB/s";
  return v.toFixed(0) + " B/s";
}

// health classifies a success rate: "none" without traffic.
export function health(success: number | null | undefined): "ok" | "warn" | "fail" | "none" {
  if (success === null || success === undefined) return "none";
  if (success < FAILING) return "fail";
  if (success < WARNING) return "warn";
  return "ok";
}
