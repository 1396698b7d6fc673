/** Three time-series charts (uPlot, bundled): messages and drops, requests, latency p50/p99. */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Point } from "../live.ts";

const MAX_POINTS = 800;

interface Chart {
  plot: uPlot;
  cols: Array<(p: Point) => number | null>;
}

export class Charts {
  private readonly charts: Chart[] = [];
  private readonly t: number[] = [];
  private readonly data: Array<Array<number | null>> = [];
  private readonly spec: Array<{ el: HTMLElement; title: string; series: Array<{ label: string; stroke: string; fill?: string; get: (p: Point) => number | null }> }>;

  constructor(els: { msgs: HTMLElement; ops: HTMLElement; lat: HTMLElement }) {
    this.spec = [
      {
        el: els.msgs,
        title: "Messages / s",
        series: [
          { label: "sent", stroke: "#2f5fe1", fill: "rgba(47,95,225,0.10)", get: (p) => p.msgs },
          { label: "dropped", stroke: "#d64545", fill: "rgba(214,69,69,0.15)", get: (p) => p.drops },
        ],
      },
      { el: els.ops, title: "Requests answered / s", series: [{ label: "ops/s", stroke: "#1f9d55", fill: "rgba(31,157,85,0.12)", get: (p) => p.ops }] },
      {
        el: els.lat,
        title: "Request latency (ms)",
        series: [
          { label: "p50", stroke: "#7b4ddb", get: (p) => p.p50 },
          { label: "p99", stroke: "#e08a2f", get: (p) => p.p99 },
        ],
      },
    ];
    for (const s of this.spec) for (const _ of s.series) this.data.push([]);
    this.build();
    new ResizeObserver(() => this.resize()).observe(els.msgs);
  }

  private build(): void {
    let col = 0;
    for (const s of this.spec) {
      const width = Math.max(300, s.el.clientWidth);
      const first = col;
      const plot = new uPlot(
        {
          title: s.title,
          width,
          height: 130,
          legend: { show: true, live: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
          axes: [{ stroke: "#6b7386", grid: { stroke: "#eef0f5" }, space: 70, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], values: (_u, vals) => vals.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour12: false })) }, { stroke: "#6b7386", grid: { stroke: "#eef0f5" }, size: 52 }],
          series: [{}, ...s.series.map((x) => ({ label: x.label, stroke: x.stroke, fill: x.fill, width: 2, spanGaps: false, points: { show: false } }))],
        },
        [this.t, ...s.series.map((_, i) => this.data[first + i]!)] as uPlot.AlignedData,
        s.el,
      );
      this.charts.push({ plot, cols: s.series.map((x) => x.get) });
      col += s.series.length;
    }
  }

  private resize(): void {
    for (const c of this.charts) {
      const w = Math.max(300, c.plot.root.parentElement!.clientWidth);
      c.plot.setSize({ width: w, height: 130 });
    }
  }

  add(points: readonly Point[]): void {
    for (const p of points) {
      this.t.push(p.t / 1000);
      let col = 0;
      for (const s of this.spec) for (const x of s.series) this.data[col++]!.push(x.get(p));
    }
    const extra = this.t.length - MAX_POINTS;
    if (extra > 0) {
      this.t.splice(0, extra);
      for (const d of this.data) d.splice(0, extra);
    }
    let col = 0;
    for (const c of this.charts) {
      c.plot.setData([this.t, ...c.cols.map(() => this.data[col++]!)] as uPlot.AlignedData);
    }
  }
}
