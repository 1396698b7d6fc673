/**
 * The dashboard's routes on the admin API's server: the page itself (public: it holds no data and
 * reads its token from the URL fragment, which browsers never send), and, behind the admin API's
 * bearer check, the live stream and the systems' actions.
 */
import type { Cluster } from "../../driver/cluster.ts";
import { jsonError } from "../../workers/runtime/http.ts";
import page from "./page/index.html";
import { LiveView } from "./live.ts";
import { ActionError } from "./systems.ts";
import type { Timeline } from "./timeline.ts";

/** Open streams at once: a classroom of projectors is a handful, not hundreds. */
export const MAX_STREAMS = 32;
/** Bytes a slow reader may have queued before frames to it are skipped. */
const MAX_QUEUED_BYTES = 1 << 20;

export interface DashboardRoutes {
  /** Bun.serve routes served without auth (the page and its bundled assets). */
  routes: Record<string, typeof page>;
  /** Authorized requests the admin API did not route itself; null when the path is not ours. */
  fetch(req: Request, path: string): Promise<Response | null>;
  /** Pages watching now. */
  streams(): number;
}

export function dashboardRoutes(live: LiveView, timeline: Timeline, cluster: Cluster): DashboardRoutes {
  let streams = 0;
  const enc = new TextEncoder();

  function stream(req: Request): Response {
    if (streams >= MAX_STREAMS) return jsonError(503, `${MAX_STREAMS} dashboard streams are open already`);
    streams++;
    const unsubscribe: Array<() => void> = [];
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      streams--;
      for (const u of unsubscribe) u();
    };
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (event: string, data: unknown, droppable: boolean) => {
          if (closed) return;
          if (droppable && (controller.desiredSize ?? 0) < -MAX_QUEUED_BYTES) return;
          try {
            controller.enqueue(enc.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
          } catch {
            close();
          }
        };
        send("hello", { system: live.system, mode: cluster.mode, seed: cluster.seed, nodes: cluster.nodes.map((n) => ({ id: n.id, role: n.role })), history: live.points(), timeline: timeline.all(), actions: Object.keys(live.view.actions ?? {}) }, false);
        const f = live.latest();
        if (f) send("frame", f, true);
        const p = live.latestPanel();
        if (p) send("panel", p, true);
        unsubscribe.push(live.onFrame((fr) => send("frame", fr, true)));
        unsubscribe.push(live.onPanel((pf) => send("panel", pf, true)));
        unsubscribe.push(timeline.subscribe((e) => send("event", e, false)));
        req.signal.addEventListener("abort", () => {
          close();
          try {
            controller.close();
          } catch {}
        });
      },
      cancel: close,
    }, { highWaterMark: MAX_QUEUED_BYTES, size: (c) => c?.byteLength ?? 0 });
    return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
  }

  return {
    routes: { "/": page },
    streams: () => streams,
    async fetch(req, path) {
      if (path === "/events") {
        if (req.method !== "GET") return jsonError(405, "use GET");
        return stream(req);
      }
      const m = /^\/systems\/([^/]+)\/([^/]+)$/.exec(path);
      if (!m) return null;
      const [, system, name] = m;
      const action = system === live.system ? live.view.actions?.[name!] : undefined;
      if (!action) return jsonError(404, `no action "${name}" for system "${system}" (this cluster runs ${live.system}: ${Object.keys(live.view.actions ?? {}).join(", ") || "no actions"})`);
      if (req.method !== "POST") return jsonError(405, "use POST");
      let body: unknown;
      try {
        body = JSON.parse(await req.text());
      } catch {
        return jsonError(400, "body is not JSON");
      }
      try {
        const r = await action(cluster, body);
        timeline.add("info", "admin", `${system} ${name}: ${JSON.stringify(body).slice(0, 120)}`);
        return Response.json(r);
      } catch (e) {
        return jsonError(e instanceof ActionError ? 400 : 503, e instanceof Error ? e.message : String(e));
      }
    },
  };
}
