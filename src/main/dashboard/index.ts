/**
 * Everything a threaded run needs for watching it live: the timeline, the sampler, the dashboard's
 * routes on the admin API, and the terminal status line. The CLI makes one and passes the views of
 * the cluster it hands out, so every action lands on the timeline with who did it.
 */
import type { Cluster } from "../../driver/cluster.ts";
import type { Summary } from "../../driver/run.ts";
import { LiveView } from "./live.ts";
import { dashboardRoutes, type DashboardRoutes } from "./server.ts";
import { StatusLine } from "./status-line.ts";
import { Timeline, recorded } from "./timeline.ts";

/** How long a watching page gets to receive the final events before the server closes. */
const FLUSH_MS = 300;

export class LiveRun {
  readonly timeline = new Timeline();
  readonly live: LiveView;
  /** The cluster as the admin API should use it: its actions are recorded as "admin". */
  readonly adminCluster: Cluster;
  /** The cluster as the run (nemesis and scenario) should use it. */
  readonly runCluster: Cluster;
  readonly routes: DashboardRoutes;
  private status: StatusLine | null = null;

  constructor(cluster: Cluster, system: string) {
    this.live = new LiveView(cluster, system, this.timeline);
    this.adminCluster = recorded(cluster, this.timeline, "admin");
    this.runCluster = recorded(cluster, this.timeline, "nemesis");
    this.routes = dashboardRoutes(this.live, this.timeline, this.adminCluster);
  }

  start(statusStream: NodeJS.WriteStream | null): void {
    this.live.start();
    if (statusStream) this.status = new StatusLine(this.live, this.timeline, statusStream);
  }

  /** The checks go on the timeline (a watching page shows them), and the status line clears itself. */
  finish(summary: Summary | null): void {
    this.status?.stop();
    this.status = null;
    if (summary) for (const [name, ok] of Object.entries(summary.checks)) this.timeline.add("check", "checks", `${name}${summary.details[name] ? ` — ${summary.details[name]}` : ""}`, ok);
  }

  /** Stop sampling; a watching page first gets a moment to receive the last events (the checks). */
  async stop(): Promise<void> {
    this.status?.stop();
    this.live.stop();
    if (this.routes.streams() > 0) await Bun.sleep(FLUSH_MS);
  }
}

/** The line the run prints so a person can open the page: the token rides in the fragment, which browsers never send. */
export function dashboardLine(adminUrl: URL | string, secret: string, showToken: boolean): string {
  const base = String(adminUrl);
  return showToken ? `dashboard: ${base}#token=${encodeURIComponent(secret)}` : `dashboard: ${base}#token=<the --secret>`;
}
