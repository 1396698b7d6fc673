/**
 * The admin API: HTTP on 127.0.0.1, bearer-token auth with the cluster secret. Every bad request
 * gets a 4xx JSON error and changes nothing.
 */
import { timingSafeEqual } from "node:crypto";
import { NotAppliedError, type Cluster } from "../driver/cluster.ts";
import { headOf, jsonError, requestUrl } from "../workers/runtime/http.ts";

export interface AdminOptions {
  port: number;
  /** Default 127.0.0.1: only this machine. */
  hostname?: string;
  secret: string;
  cluster: Cluster;
  extraStats?: () => Record<string, unknown>;
  /** More on the same server (the dashboard): public Bun.serve routes, and authorized requests these routes do not know. */
  extra?: { routes?: Record<string, Bun.HTMLBundle>; fetch?(req: Request, path: string): Promise<Response | null> };
}

const MAX_BODY = 64 * 1024;

function authorized(req: Request, secret: string): boolean {
  const h = req.headers.get("authorization") ?? "";
  const m = /^Bearer (.+)$/.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

const NODE_ACTIONS = ["crash", "restart", "pause", "resume"] as const;

export function startAdmin(opts: AdminOptions): ReturnType<typeof Bun.serve> {
  const { cluster } = opts;
  const started = Date.now();
  const route = async (req: Request, path: string): Promise<Response> => {
    try {
      if (path === "/nodes") {
        if (req.method !== "GET") return jsonError(405, "use GET");
        return Response.json({ nodes: await cluster.info() });
      }
      if (path === "/stats") {
        if (req.method !== "GET") return jsonError(405, "use GET");
        const nodes = await cluster.info();
        const sum = (k: "sent" | "received" | "errors" | "refused") => nodes.reduce((a, n) => a + (n.stats?.[k] ?? 0), 0);
        return Response.json({
          mode: cluster.mode,
          seed: cluster.seed,
          uptimeSeconds: (Date.now() - started) / 1000,
          nodes: nodes.length,
          running: nodes.filter((n) => n.status === "running").length,
          messages: { sent: sum("sent"), received: sum("received"), errors: sum("errors"), refused: sum("refused") },
          network: cluster.network(),
          ...(opts.extraStats?.() ?? {}),
        });
      }
      if (path === "/network") {
        if (req.method === "GET") return Response.json(cluster.network());
        if (req.method !== "PUT") return jsonError(405, "use GET or PUT");
        let text: string;
        try {
          text = await req.text();
        } catch {
          return jsonError(400, "the request body ended early");
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          return jsonError(400, "body is not JSON");
        }
        try {
          await cluster.setNetwork(body as never);
        } catch (e) {
          return jsonError(e instanceof NotAppliedError ? 503 : 400, e instanceof Error ? e.message : String(e));
        }
        return Response.json(cluster.network());
      }
      const m = /^\/nodes\/([^/]+)\/([^/]+)$/.exec(path);
      if (m) {
        let id: string;
        try {
          id = decodeURIComponent(m[1]!);
        } catch {
          return jsonError(400, `node id ${JSON.stringify(m[1]!.slice(0, 100))} is not valid URL encoding`);
        }
        const action = m[2]!;
        if (!cluster.nodes.some((n) => n.id === id)) return jsonError(404, `no node "${id}"`);
        if (!(NODE_ACTIONS as readonly string[]).includes(action)) return jsonError(404, `unknown action "${action}" (use ${NODE_ACTIONS.join(", ")})`);
        if (req.method !== "POST") return jsonError(405, "use POST");
        const status = await cluster[action as (typeof NODE_ACTIONS)[number]](id);
        return Response.json({ id, status });
      }
      return jsonError(404, `no route ${path} (routes: GET /nodes, GET /stats, GET|PUT /network, POST /nodes/:id/{${NODE_ACTIONS.join(",")}})`);
    } catch (e) {
      return jsonError(500, e instanceof Error ? e.message : String(e));
    }
  };
  return Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port,
    maxRequestBodySize: MAX_BODY,
    // Production bundling of the dashboard page: built once, no dev-server socket.
    development: false,
    ...(opts.extra?.routes ? { routes: opts.extra.routes } : {}),
    async fetch(req) {
      if (!authorized(req, opts.secret)) return jsonError(401, "missing or wrong bearer token");
      const url = requestUrl(req);
      if (url instanceof Response) return url;
      try {
        const extra = await opts.extra?.fetch?.(req, url.pathname);
        if (extra) return extra;
      } catch (e) {
        return jsonError(500, e instanceof Error ? e.message : String(e));
      }
      // HEAD answers as GET would, without the body.
      if (req.method === "HEAD") return headOf(await route(new Request(url.href, { method: "GET", headers: req.headers }), url.pathname));
      return route(req, url.pathname);
    },
    error(e) {
      return jsonError(500, e.message);
    },
  });
}
