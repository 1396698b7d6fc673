import { RpcError, type HttpHandler } from "../runtime/types.ts";
import { error, fromRpc, olympicsHttp, type OlympicsApi } from "./http.ts";

/**
 * HTTP for the tiered Olympics. A front end serves obelix's routes (http.ts) plus GET /getClock
 * and GET /raffle; a dispatcher serves GET /getServer and POST /registerClient.
 */

export interface FrontendExtras {
  clock(): unknown;
  raffle(): unknown;
}

function route(req: Request): { path: string; method: string } | Response {
  try {
    const url = new URL(req.url);
    return { path: url.pathname.replace(/\/+$/, "").toLowerCase(), method: req.method.toUpperCase() };
  } catch {
    return error(400, "malformed URL");
  }
}

export function frontendHttp(api: OlympicsApi, extras: FrontendExtras): HttpHandler {
  const rest = olympicsHttp(api);
  return async (req) => {
    const r = route(req);
    if (r instanceof Response) return r;
    if (r.path === "/getclock" || r.path === "/raffle") {
      if (r.method !== "GET") return error(405, `${r.path} takes GET`, { Allow: "GET" });
      return Response.json(r.path === "/getclock" ? extras.clock() : extras.raffle());
    }
    return rest(req);
  };
}

export interface DispatcherApi {
  leader(): string;
  isLeader(): boolean;
  getServer(): string;
  registerClient(client: unknown): string;
}

const MAX_BODY = 4096;

export function dispatcherHttp(api: DispatcherApi): HttpHandler {
  return async (req) => {
    const r = route(req);
    if (r instanceof Response) return r;
    try {
      if (r.path === "/getserver" || r.path === "/registerclient") {
        if (!api.isLeader()) return Response.json({ error: { code: 421, message: `not the leader; ask ${api.leader()}` }, leader: api.leader() }, { status: 421 });
      }
      if (r.path === "/getserver") {
        if (r.method !== "GET") return error(405, "/getServer takes GET", { Allow: "GET" });
        return Response.json({ server: api.getServer() });
      }
      if (r.path === "/registerclient") {
        if (r.method !== "POST") return error(405, "/registerClient takes POST", { Allow: "POST" });
        const text = await req.text();
        if (text.length > MAX_BODY) return error(413, "body too large");
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          return error(400, 'the body must be JSON: {"client": "<your name>"}');
        }
        const client = typeof body === "object" && body !== null ? (body as Record<string, unknown>).client : undefined;
        return Response.json({ client, server: api.registerClient(client) });
      }
      if (r.path === "") return Response.json({ service: "dispatcher", leader: api.leader(), routes: ["GET /getServer", 'POST /registerClient  {"client": "<name>"}'] });
      return error(404, "no such route; routes: GET /getServer, POST /registerClient");
    } catch (e) {
      if (e instanceof RpcError) return fromRpc(e);
      throw e;
    }
  };
}
