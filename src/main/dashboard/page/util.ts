/** Small helpers for the page: HTML escaping and number formatting. */

const ESC: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Everything a node or a user typed goes through this before it reaches innerHTML. */
export function esc(x: unknown): string {
  return String(x ?? "").replace(/[&<>"']/g, (c) => ESC[c]!);
}

export function fmtRate(x: number): string {
  if (x >= 10_000) return `${(x / 1000).toFixed(0)}k`;
  if (x >= 1000) return `${(x / 1000).toFixed(1)}k`;
  if (x >= 10) return x.toFixed(0);
  return x.toFixed(1);
}

export function fmtMs(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}
