// DOM construction without HTML parsing: every string becomes a text node
// or an attribute value, never markup, so names, paths and headers read
// from the API cannot inject elements or scripts.

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | undefined>;

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(e: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    // Event-handler attributes would take code: none is ever set from here.
    if (k.toLowerCase().startsWith("on")) throw new Error("refusing event attribute " + k);
    e.setAttribute(k, String(v));
  }
}

function append(e: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

// el creates an HTML element with attributes and children (strings are text).
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

// svg creates an SVG element (createElementNS) with attributes and children.
export function svg(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const e = document.createElementNS(SVG_NS, tag) as SVGElement;
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

// link is an anchor to a route of the page (hash URLs built by route()).
export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return el("a", { href }, ...children);
}

// route builds "#/seg/seg" with each segment URI-encoded.
export function route(...segments: string[]): string {
  return "#/" + segments.map(encodeURIComponent).join("/");
}
