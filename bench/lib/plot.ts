import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { TopLevelSpec } from "vega-lite";

/** Render a Vega-Lite spec to an SVG file, headless (no browser, no canvas). */
export async function writeSvg(path: string, spec: TopLevelSpec): Promise<void> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
}

/** A line chart of y against x, one line per series. */
export function lineChart(opts: {
  title: string;
  rows: Array<Record<string, unknown>>;
  x: string;
  y: string;
  series: string;
  xTitle?: string;
  yTitle?: string;
  xLog?: boolean;
  yLog?: boolean;
}): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: opts.title,
    width: 560,
    height: 320,
    data: { values: opts.rows },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: opts.x, type: "quantitative", title: opts.xTitle ?? opts.x, scale: opts.xLog ? { type: "log" } : {} },
      y: { field: opts.y, type: "quantitative", title: opts.yTitle ?? opts.y, scale: opts.yLog ? { type: "log" } : {} },
      color: { field: opts.series, type: "nominal", legend: { labelLimit: 600 } },
    },
  } as TopLevelSpec;
}

/** Bars of y for each category on x, one bar per group side by side. */
export function groupedBarChart(opts: { title: string; rows: Array<Record<string, unknown>>; x: string; y: string; group: string; xTitle?: string; yTitle?: string; yLog?: boolean }): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: opts.title,
    width: 640,
    height: 320,
    data: { values: opts.rows },
    mark: { type: "bar" },
    encoding: {
      x: { field: opts.x, type: "nominal", title: opts.xTitle ?? opts.x, axis: { labelAngle: -30, labelLimit: 300 } },
      xOffset: { field: opts.group, type: "nominal" },
      // A log scale has no zero: bars start at the smallest power of ten below the data.
      y: { field: opts.y, type: "quantitative", title: opts.yTitle ?? opts.y, scale: opts.yLog ? { type: "log", domainMin: logFloor(opts.rows, opts.y) } : {} },
      ...(opts.yLog ? { y2: { datum: logFloor(opts.rows, opts.y) } } : {}),
      color: { field: opts.group, type: "nominal", legend: { labelLimit: 400 } },
    },
  } as TopLevelSpec;
}

function logFloor(rows: Array<Record<string, unknown>>, field: string): number {
  const min = Math.min(...rows.map((r) => Number(r[field])).filter((v) => v > 0));
  return Number.isFinite(min) ? 10 ** Math.floor(Math.log10(min)) : 1;
}
