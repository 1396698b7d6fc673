import { Limits } from "./limits.ts";
import type { HttpHandler, HttpOptions } from "./types.ts";

export const DEFAULT_MAX_HTTP_BODY = Limits.defaultMaxHttpBodyBytes;

/** The error shape every menhir HTTP API answers with: `{"error": {"code", "message"}}`, status = code. */
export function jsonError(status: number, message: string): Response {
  return Response.json({ error: { code: status, message } }, { status });
}

/** The request's URL, or a 400 when it has none a handler could use (no Host header, `CONNECT host:port`). */
export function requestUrl(req: Request): URL | Response {
  if (req.method === "CONNECT") return jsonError(400, "CONNECT is not served here: this is not a proxy");
  try {
    return new URL(req.url);
  } catch {
    return jsonError(400, "no usable request URL (is the Host header missing?)");
  }
}

/** HEAD answers as GET would, without the body (its length is kept in Content-Length). */
export async function headOf(res: Response): Promise<Response> {
  const size = (await res.arrayBuffer()).byteLength;
  const headers = new Headers(res.headers);
  headers.set("content-length", String(size));
  return new Response(null, { status: res.status, statusText: res.statusText, headers });
}

/**
 * Wraps a node's HTTP handler with the limits every host applies: a request with no usable URL is a
 * 400, HEAD is answered as GET without a body, bodies over maxBodyBytes are refused with 413 before
 * the handler sees them, and a handler that throws yields a 500 — never a crash. A client that goes
 * away mid-body is its own business: onClientGone (a debug line), not onError.
 */
export function guardHttp(handler: HttpHandler, opts: HttpOptions, onError: (e: unknown) => void, onClientGone: (e: unknown) => void = () => {}): (req: Request) => Promise<Response> {
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_HTTP_BODY;
  return async (req) => {
    const url = requestUrl(req);
    if (url instanceof Response) return url;
    try {
      const declared = Number(req.headers.get("content-length") ?? "0");
      if (declared > max) return jsonError(413, `request body over ${max} bytes`);
      if (req.method === "HEAD") return await headOf(await handler(new Request(url.href, { method: "GET", headers: req.headers })));
      if (req.body !== null && req.method !== "GET") {
        let buf: ArrayBuffer;
        try {
          buf = await req.arrayBuffer();
        } catch (e) {
          onClientGone(e);
          return jsonError(400, "the request body ended early");
        }
        if (buf.byteLength > max) return jsonError(413, `request body over ${max} bytes`);
        req = new Request(url.href, { method: req.method, headers: req.headers, body: buf });
      }
      return await handler(req);
    } catch (e) {
      onError(e);
      return jsonError(500, "internal error");
    }
  };
}
