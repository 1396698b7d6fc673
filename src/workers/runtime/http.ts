import { Limits } from "./limits.ts";
import type { HttpHandler, HttpOptions } from "./types.ts";

export const DEFAULT_MAX_HTTP_BODY = Limits.defaultMaxHttpBodyBytes;

/** The error shape every menhir HTTP API answers with: `{"error": {"code", "message"}}`, status = code. */
export function jsonError(status: number, message: string): Response {
  return Response.json({ error: { code: status, message } }, { status });
}

/**
 * Wraps a node's HTTP handler with the limits every host applies: bodies over maxBodyBytes are refused
 * with 413 before the handler sees them, and a handler that throws yields a 500 — never a crash.
 */
export function guardHttp(handler: HttpHandler, opts: HttpOptions, onError: (e: unknown) => void): (req: Request) => Promise<Response> {
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_HTTP_BODY;
  return async (req) => {
    try {
      const declared = Number(req.headers.get("content-length") ?? "0");
      if (declared > max) return jsonError(413, `request body over ${max} bytes`);
      if (req.body !== null && req.method !== "GET" && req.method !== "HEAD") {
        const buf = await req.arrayBuffer();
        if (buf.byteLength > max) return jsonError(413, `request body over ${max} bytes`);
        req = new Request(req.url, { method: req.method, headers: req.headers, body: buf });
      }
      return await handler(req);
    } catch (e) {
      onError(e);
      return jsonError(500, "internal error");
    }
  };
}
