/**
 * The failing window, for people: a self-contained HTML page (inline SVG and CSS, no scripts or
 * links) with one lane per client and every operation as a bar from invocation to completion. For
 * each non-linearizable key it shows the operations around the failure, highlights the window the
 * checker could not order (the stuck operation in the strongest colour), and prints the model state
 * just before the window and the end of the longest linearizable prefix — as Porcupine's page does.
 */
import type { CheckResult, Failure } from "./linearizable.ts";
import type { TotalOrderResult } from "./total-order.ts";
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
  const origin = originOf(history);
  const sections = result.failures.map((f, i) => failureSection(history.filter((op) => partition(op) === f.key), f, i, origin));
  const summary =
    `<p class="verdict ${result.verdict === "linearizable" ? "good" : "bad"}">${esc(result.verdict)}</p>` +
    `<p>${result.ops} operations in ${result.partitions} partition(s), checked in ${result.elapsedMs.toFixed(1)} ms.` +
    (result.unknown.length ? ` Search budget ran out for: ${esc(result.unknown.join(", "))}.` : "") +
    `</p>`;
  const legend = `<p class="legend"><span><i class="sw" style="background:${OK}"></i>ok</span><span><i class="sw" style="background:${FAIL}"></i>fail (observed)</span><span><i class="sw" style="background:${INFO}"></i>info (may have happened; open to the end)</span><span><i class="sw" style="background:${WINDOW}"></i>failing window</span><span><i class="sw" style="background:${STUCK}"></i>the operation that could not be linearized</span></p>`;
  return page(title, summary + legend + (sections.join("\n") || "<p>Nothing to show: every partition is linearizable.</p>"));
}

/** The page for a replicated log's total-order check: the problems, and the sends they name among their neighbours. */
export function renderTotalOrderReport(history: History, result: TotalOrderResult, opts: { title?: string; f?: string } = {}): string {
  const title = opts.title ?? "History check: total order";
  const origin = originOf(history);
  const ms = (t: number | null) => (t === null ? "∞" : (t - origin).toFixed(1));
  const summary =
    `<p class="verdict ${result.ok ? "good" : "bad"}">${result.ok ? "total order holds" : "total order violated"}</p>` +
    `<p>${result.acked} acknowledged sends, ${result.logged} of them in the log.</p>`;
  if (result.ok) return page(title, summary);
  const sends = history.filter((op) => op.f === (opts.f ?? "send"));
  const witnesses = new Set(result.witnesses);
  const lo = Math.min(...result.witnesses.map((o) => o.invokeMs));
  const hi = Math.max(...result.witnesses.map((o) => o.completeMs ?? o.invokeMs));
  const margin = Math.max((hi - lo) * 0.1, 5);
  const near = sends.filter((o) => !witnesses.has(o) && o.invokeMs <= hi + margin && (o.completeMs ?? Infinity) >= lo - margin);
  const svg = chart([...result.witnesses, ...near].slice(0, MAX_BARS), (o) => (witnesses.has(o) ? STUCK : undefined), lo, hi, origin);
  const rows = result.witnesses.map((o) => `<tr class="stuck"><td>${esc(describeOp(o))}</td><td>${ms(o.invokeMs)}</td><td>${ms(o.completeMs)}</td></tr>`);
  return page(
    title,
    summary +
      `<ul>${result.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul>` +
      `<p class="legend"><span><i class="sw" style="background:${STUCK}"></i>a send named by a problem</span><span><i class="sw" style="background:${OK}"></i>other sends around them</span></p>` +
      svg +
      `<table><tr><th>send</th><th>invoked (ms from start)</th><th>completed</th></tr>${rows.join("")}</table>`,
  );
}

const OK = "#9ecae1";
const FAIL = "#d9d9d9";
const INFO = "#fdd49e";
const WINDOW = "#fb6a4a";
const STUCK = "#b00020";

/** Times are shown from the first invocation: absolute epoch milliseconds are unreadable. */
function originOf(history: History): number {
  const o = history.reduce((m, op) => Math.min(m, op.invokeMs), Infinity);
  return Number.isFinite(o) ? o : 0;
}

function page(title: string, body: string): string {
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
${body}
</body></html>
`;
}

/**
 * One lane per client, each operation a bar from invocation to completion (indefinite ones run to
 * the right edge). `colour` picks a highlight, else the bar shows its type; [bandLo, bandHi] is shaded.
 */
function chart(shown: Op[], colour: (op: Op) => string | undefined, bandLo: number, bandHi: number, origin: number, from = bandLo, to = bandHi): string {
  const ms = (t: number | null) => (t === null ? "∞" : (t - origin).toFixed(1));
  const end = Math.max(to, ...shown.map((o) => o.completeMs ?? o.invokeMs));
  const start = Math.min(from, ...shown.map((o) => o.invokeMs));
  const lanes = [...new Set(shown.map((o) => o.process))].sort();
  const x = (t: number) => LEFT + ((t - start) / Math.max(end - start, 1)) * (WIDTH - LEFT - 10);
  const h = lanes.length * LANE_H + 30;
  const bars: string[] = [];
  lanes.forEach((p, i) => {
    bars.push(`<text x="4" y="${i * LANE_H + 17}">${esc(p)}</text><line x1="${LEFT}" x2="${WIDTH}" y1="${i * LANE_H + LANE_H}" y2="${i * LANE_H + LANE_H}" stroke="#eee"/>`);
  });
  bars.push(`<rect x="${x(bandLo)}" y="0" width="${Math.max(x(bandHi) - x(bandLo), 2)}" height="${h - 30}" fill="${WINDOW}" opacity="0.12"/>`);
  for (const o of shown) {
    const lane = lanes.indexOf(o.process);
    const x0 = x(o.invokeMs);
    const x1 = o.completeMs === null || o.type === "info" ? Math.max(x(o.completeMs ?? end), x(end)) : x(o.completeMs);
    const hi = colour(o);
    const fill = hi ?? (o.type === "ok" ? OK : o.type === "fail" ? FAIL : INFO);
    bars.push(
      `<g><title>${esc(describeOp(o))} [${ms(o.invokeMs)}–${ms(o.completeMs)} ms]</title><rect x="${x0}" y="${lane * LANE_H + 4}" width="${Math.max(x1 - x0, 2)}" height="${LANE_H - 8}" rx="3" fill="${fill}" stroke="${hi === STUCK ? "#000" : "none"}"/>` +
        `<text x="${x0 + 3}" y="${lane * LANE_H + 17}">${esc(`${o.f} ${short(o.value)}`)}</text></g>`,
    );
  }
  bars.push(`<text x="${LEFT}" y="${h - 8}">${esc(`${ms(start)} ms`)}</text><text x="${WIDTH - 100}" y="${h - 8}">${esc(`${ms(end)} ms`)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${h}" viewBox="0 0 ${WIDTH} ${h}">${bars.join("")}</svg>`;
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
  const svg = chart([...f.window, ...near].slice(0, MAX_BARS), (o) => (o === f.stuck ? STUCK : inWindow.has(o) ? WINDOW : undefined), lo, hi, origin, from, to);
  const rows = [
    ...tail.map((o) => `<tr><td>linearized</td><td>${esc(describeOp(o))}</td><td>${ms(o.invokeMs)}</td><td>${ms(o.completeMs)}</td></tr>`),
    ...f.window.map((o) => `<tr class="${o === f.stuck ? "stuck" : "window"}"><td>${o === f.stuck ? "stuck" : "window"}</td><td>${esc(describeOp(o))}</td><td>${ms(o.invokeMs)}</td><td>${ms(o.completeMs)}</td></tr>`),
  ];
  return `<section id="failure-${index}">
<h2>Key ${esc(f.key || "(all)")}: not linearizable</h2>
<p>The longest linearizable prefix holds ${f.linearized.length} operation(s). After it, no order of the ${f.window.length} operation(s) in the window lets <b>${esc(describeOp(f.stuck))}</b> take effect before it returned.</p>
<p class="state">model state before the window: ${esc(f.stateBefore)}</p>
${svg}
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
