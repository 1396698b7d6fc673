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
      color: { field: opts.series, type: "nominal" },
    },
  } as TopLevelSpec;
}
