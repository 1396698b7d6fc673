import { DEFAULT_MAX_HTTP_BODY } from "../runtime/http.ts";
import type { NodeContext } from "../runtime/types.ts";

/**
 * HTTP helpers shared by the systems with a REST front end: a reply as data (so one router serves
 * both real HTTP and `http` messages from client nodes, which may not open sockets), and the JSON
 * error shape `{"error": {"code", "message"}}`.
 */
export interface HttpReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const MAX_BODY_BYTES = DEFAULT_MAX_HTTP_BODY;

export function ok(data: unknown): HttpReply {
  return { status: 200, body: { data } };
}

export function fail(status: number, message: string, headers?: Record<string, string>): HttpReply {
  return { status, body: { error: { code: status, message } }, headers };
}

export function toResponse(r: HttpReply): Response {
  return Response.json(r.body, { status: r.status, headers: r.headers });
}

/** Cap a body read from a message: strings only, else treated as absent-and-invalid. */
export function messageBody(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** True when a body carried in a message is over the limit real HTTP bodies are held to. */
export function bodyTooLarge(body: string | undefined): boolean {
  return body !== undefined && body.length * 3 > MAX_BODY_BYTES && Buffer.byteLength(body) > MAX_BODY_BYTES;
}

/**
 * A parser's refusal: the reply to send instead of a value. Keyed by a symbol, so no parsed body,
 * whatever keys it has ({"error": ...} included), can pass for one.
 */
export const REFUSED: unique symbol = Symbol("refused");
export type Refused = { readonly [REFUSED]: HttpReply };
export type Parsed<T> = T | Refused;

export function refuse(status: number, message: string): Refused {
  return { [REFUSED]: fail(status, message) };
}

export function isRefused<T>(p: Parsed<T>): p is Refused {
  return typeof p === "object" && p !== null && REFUSED in p;
}

/** Parses a JSON object body, or says what is wrong with it. */
export function parseJsonObject(text: string): Parsed<Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return refuse(400, "body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return refuse(400, "body must be a JSON object");
  return v as Record<string, unknown>;
}

/**
 * Serves a router over real HTTP on `port` (0: a free one). The router is the same one `http`
 * messages from client nodes reach, so both doors answer alike.
 */
export function serveRouter(node: NodeContext<any>, port: number, route: (method: string, path: string, body: string | undefined) => Promise<HttpReply>): void {
  node.serveHttp(
    async (req) => {
      const url = new URL(req.url);
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.text();
      return toResponse(await route(req.method, url.pathname + url.search, body));
    },
    { port, maxBodyBytes: MAX_BODY_BYTES },
  );
  node.log.info(port === 0 ? "serving HTTP on a free port (see the cluster's httpUrl)" : `serving HTTP on http://localhost:${port}`);
}
