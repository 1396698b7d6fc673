/**
 * The terminal's view of a running cluster: operations per second, latency p50/p99, nodes up and
 * the last fault. On a terminal one line redrawn in place every second; piped, a line every few seconds.
 */
import type { LiveView } from "./live.ts";
import type { Timeline } from "./timeline.ts";

const TTY_EVERY_MS = 1000;
const PIPED_EVERY_MS = 5000;

export function statusText(live: LiveView, timeline: Timeline, now = Date.now()): string | null {
  const f = live.latest();
  if (!f) return null;
  const ms = (x: number | null) => (x === null ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const last = timeline.lastFault();
  const fault = last ? `${last.text} (${last.source}, ${Math.round((now - last.at) / 1000)} s ago)` : "none";
  return `ops/s ${f.point.ops.toFixed(0)} · p50 ${ms(f.point.p50)} ms · p99 ${ms(f.point.p99)} ms · nodes up ${f.up}/${f.nodes.length} · last fault: ${fault}`;
}

export class StatusLine {
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly tty: boolean;
  private drawn = false;

  constructor(
    private readonly live: LiveView,
    private readonly timeline: Timeline,
    private readonly out: NodeJS.WriteStream,
  ) {
    this.tty = out.isTTY === true;
    this.timer = setInterval(() => this.draw(), this.tty ? TTY_EVERY_MS : PIPED_EVERY_MS);
  }

  private draw(): void {
    const text = statusText(this.live, this.timeline);
    if (text === null) return;
    if (this.tty) {
      const width = this.out.columns ?? 120;
      this.out.write(`\r\x1b[2K${text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text}`);
      this.drawn = true;
    } else this.out.write(`status: ${text}\n`);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.drawn) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }
}
