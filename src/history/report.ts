/**
 * The failing window, for people: a self-contained HTML page (inline SVG and CSS, no scripts or
 * links) with one lane per client and every operation as a bar from invocation to completion. For
 * each non-linearizable key it shows the operations around the failure, highlights the window the
 * checker could not order (the stuck operation in the strongest colour), and prints the model state
 * just before the window and the end of the longest linearizable prefix — as Porcupine's page does.
 */
import type { CheckResult, Failure } from "./linearizable.ts";
import { describeOp, opKey, type History, type Op } from "./op.ts";

/** Bars drawn per failure: the page stays readable and small for any history size. */
const MAX_BARS = 400;
const LANE_H = 26;
const LEFT = 120;
const WIDTH = 1100;

export interface ReportOptions {
  title?: string;
  /** The partition function of the model (default: the op's key). */
  partition?: (op: Op) => string;
}

export function renderHistoryReport(history: History, result: CheckResult, opts: ReportOptions = {}): string {
  const title = opts.title ?? `History check: ${result.model}`;
  const partition = opts.partition ?? opKey;
  // Times shown relative to the first invocation: absolute epoch milliseconds are unreadable.
  const origin = history.reduce((m, op) => Math.min(m, op.invokeMs), Infinity);
  const sections = result.failures.map((f, i) => failureSection(history.filter((op) => partition(op) === f.key), f, i, Number.isFinite(origin) ? origin : 0));
  const summary =
    `<p class="verdict ${result.verdict === "linearizable" ? "good" : "bad"}">${esc(result.verdict)}</p>` +
    `<p>${result.ops} operations in ${result.partitions} partition(s), checked in ${result.elapsedMs.toFixed(1)} ms.` +
    (result.unknown.length ? ` Search budget ran out for: ${esc(result.unknown.join(", "))}.` : "") +
    `</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:32px}
.verdict{font-weight:bold;font-size:16px}.good{color:#17702a}.bad{color:#b00020}
.legend span{display:inline-block;margin-right:16px}.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
svg{border:1px solid #ddd;background:#fcfcfc}
text{font:11px ui-monospace,monospace}
.state{background:#f4f4f4;padding:8px;border-left:4px solid #b00020;font-family:ui-monospace,monospace}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left;font-family:ui-monospace,monospace;font-size:12px}
tr.stuck td{color:#b00020;font-weight:bold}tr.window td{color:#8a4b00}
</style></head><body>
<h1>${esc(title)}</h1>
${summary}
<p class="legend"><span><i class="sw" style="background:#9ecae1"></i>ok</span><span><i class="sw" style="background:#d9d9d9"></i>fail (observed)</span><span><i class="sw" style="background:#fdd49e"></i>info (may have happened; open to the end)</span><span><i class="sw" style="background:#fb6a4a"></i>failing window</span><span><i class="sw" style="background:#b00020"></i>the operation that could not be linearized</span></p>
${sections.join("\n") || "<p>Nothing to show: every partition is linearizable.</p>"}
</body></html>
`;
}

function failureSection(ops: History, f: Failure, index: number, origin: number): string {
  const ms = (t: number | null) => (t === null ? "∞" : (t - origin).toFixed(1));
  const inWindow = new Set(f.window);
  const lo = Math.min(...f.window.map((o) => o.invokeMs), f.stuck.invokeMs);
  const hi = Math.max(...f.window.map((o) => o.completeMs ?? o.invokeMs), f.stuck.completeMs ?? f.stuck.invokeMs);
  // Context: back to the last operations linearized before the window (they made the state shown),
  // and every operation overlapping that stretch; the window's own first.
  const tail = f.linearized.slice(-10);
  const from = Math.min(lo, ...tail.map((o) => o.invokeMs));
  const to = hi + Math.max((hi - from) * 0.05, 1);
  const near = ops.filter((o) => !inWindow.has(o) && o.invokeMs <= to && (o.completeMs ?? Infinity) >= from);
  const shown = [...f.window, ...near].slice(0, MAX_BARS);
  const end = Math.max(to, ...shown.map((o) => o.completeMs ?? o.invokeMs));
  const start = Math.min(from, ...shown.map((o) => o.invokeMs));
  const lanes = [...new Set(shown.map((o) => o.process))].sort();
  const x = (t: number) => LEFT + ((t - start) / Math.max(end - start, 1)) * (WIDTH - LEFT - 10);
  const h = lanes.length * LANE_H + 30;
  const bars: string[] = [];
  lanes.forEach((p, i) => {
    bars.push(`<text x="4" y="${i * LANE_H + 17}">${esc(p)}</text><line x1="${LEFT}" x2="${WIDTH}" y1="${i * LANE_H + LANE_H}" y2="${i * LANE_H + LANE_H}" stroke="#eee"/>`);
  });
  bars.push(`<rect x="${x(lo)}" y="0" width="${Math.max(x(hi) - x(lo), 2)}" height="${h - 30}" fill="#fb6a4a" opacity="0.12"/>`);
  for (const o of shown) {
    const lane = lanes.indexOf(o.process);
    const x0 = x(o.invokeMs);
    const x1 = o.completeMs === null || o.type === "info" ? Math.max(x(o.completeMs ?? end), x(end)) : x(o.completeMs);
    const fill = o === f.stuck ? "#b00020" : inWindow.has(o) ? "#fb6a4a" : o.type === "ok" ? "#9ecae1" : o.type === "fail" ? "#d9d9d9" : "#fdd49e";
    const label = `${o.f} ${short(o.value)}`;
    bars.push(
      `<g><title>${esc(describeOp(o))} [${ms(o.invokeMs)}–${ms(o.completeMs)} ms]</title><rect x="${x0}" y="${lane * LANE_H + 4}" width="${Math.max(x1 - x0, 2)}" height="${LANE_H - 8}" rx="3" fill="${fill}" stroke="${o === f.stuck ? "#000" : "none"}"/>` +
        `<text x="${x0 + 3}" y="${lane * LANE_H + 17}">${esc(label)}</text></g>`,
    );
  }
  bars.push(`<text x="${LEFT}" y="${h - 8}">${esc(`${ms(start)} ms`)}</text><text x="${WIDTH - 100}" y="${h - 8}">${esc(`${ms(end)} ms`)}</text>`);
  const rows = [
    ...tail.map((o) => `<tr><td>linearized</td><td>${esc(describeOp(o))}</td><td>${ms(o.invokeMs)}</td><td>${ms(o.completeMs)}</td></tr>`),
    ...f.window.map((o) => `<tr class="${o === f.stuck ? "stuck" : "window"}"><td>${o === f.stuck ? "stuck" : "window"}</td><td>${esc(describeOp(o))}</td><td>${ms(o.invokeMs)}</td><td>${ms(o.completeMs)}</td></tr>`),
  ];
  return `<section id="failure-${index}">
<h2>Key ${esc(f.key || "(all)")}: not linearizable</h2>
<p>The longest linearizable prefix holds ${f.linearized.length} operation(s). After it, no order of the ${f.window.length} operation(s) in the window lets <b>${esc(describeOp(f.stuck))}</b> take effect before it returned.</p>
<p class="state">model state before the window: ${esc(f.stateBefore)}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${h}" viewBox="0 0 ${WIDTH} ${h}">${bars.join("")}</svg>
<table><tr><th></th><th>operation</th><th>invoked (ms from start)</th><th>completed</th></tr>${rows.join("")}</table>
</section>`;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? "";
  return s.length > 24 ? `${s.slice(0, 23)}…` : s;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
