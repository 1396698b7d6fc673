import { ErrorCode, RpcError, type HttpHandler } from "../runtime/types.ts";
import { EVENTS, MEDALS, TEAMS } from "./domain.ts";
import type { Score, Tally } from "./domain.ts";

/** What the HTTP API serves: obelix's Scorekeeper, or a tiered front end (whose answers come from the db, hence the promises). */
export interface OlympicsApi {
  getMedalTally(team: unknown): Tally | Promise<unknown>;
  getScore(event: unknown): Score | Promise<unknown>;
  incrementMedalTally(team: unknown, medal: unknown, password: unknown, writeId?: unknown): Tally | Promise<unknown>;
  setScore(event: unknown, scores: unknown, password: unknown, writeId?: unknown): Score | Promise<unknown>;
}

/** Request bodies are a handful of scores: anything bigger is refused before it is read. */
export const MAX_HTTP_BODY_BYTES = 16 * 1024;

const ROUTES = [
  "GET /getMedalTally/:team",
  "GET /getScore/:event",
  "POST /incrementMedalTally/:team/:medal   (Authorization: Bearer <password>; optional Idempotency-Key: <id>)",
  "POST /setScore/:event   (JSON body {\"Gaul\": 3, ...}; Authorization: Bearer <password>)",
];

function json(status: number, value: unknown, headers?: Record<string, string>): Response {
  return Response.json(value, { status, headers });
}

export function error(status: number, message: string, headers?: Record<string, string>): Response {
  return json(status, { error: { code: status, message } }, headers);
}

export function fromRpc(e: RpcError): Response {
  switch (e.code) {
    case ErrorCode.KeyDoesNotExist:
      return error(404, e.text);
    case ErrorCode.Unauthorized:
      return error(403, e.text);
    case ErrorCode.TooLarge:
      return error(413, e.text);
    case ErrorCode.MalformedRequest:
      return error(400, e.text);
    case ErrorCode.PreconditionFailed:
      return error(409, e.text);
    default:
      return error(500, e.text);
  }
}

/** The password from `Authorization: Bearer <password>`; null when absent, an error Response when unusable. */
function bearer(req: Request): string | null | Response {
  const h = req.headers.get("authorization");
  if (h === null || h.trim() === "") return null;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  if (!m) return error(401, "use an Authorization header of the form \"Bearer <password>\"", { "WWW-Authenticate": "Bearer" });
  return m[1]!;
}

/**
 * obelix over HTTP, for curl and browsers. Names go in the path (URL-encoded, any case, "-" or "_"
 * for spaces); the password only in the Authorization header — a URL ends up in logs and histories.
 */
export function olympicsHttp(keeper: OlympicsApi): HttpHandler {
  return async (req) => {
    let url: URL;
    let segs: string[];
    try {
      url = new URL(req.url);
      segs = url.pathname
        .split("/")
        .filter((s) => s !== "")
        .map((s) => decodeURIComponent(s));
    } catch {
      return error(400, "malformed URL");
    }
    for (const k of url.searchParams.keys()) {
      if (/pass|pw|secret|token|auth/i.test(k)) return error(400, "the password goes in the Authorization header (Bearer), never in the URL");
    }
    const route = (segs[0] ?? "").toLowerCase();
    const method = req.method.toUpperCase();
    const need = (m: string): Response | null => (method === m ? null : error(405, `${segs[0]} takes ${m}`, { Allow: m }));
    try {
      switch (route) {
        case "":
          return need("GET") ?? json(200, { service: "obelix", routes: ROUTES, teams: TEAMS, events: EVENTS, medals: MEDALS });
        case "getmedaltally":
          return need("GET") ?? arity(segs, 2, "/getMedalTally/:team") ?? json(200, await keeper.getMedalTally(segs[1]));
        case "getscore":
          return need("GET") ?? arity(segs, 2, "/getScore/:event") ?? json(200, await keeper.getScore(segs[1]));
        case "incrementmedaltally": {
          const bad = need("POST") ?? arity(segs, 3, "/incrementMedalTally/:team/:medal");
          if (bad) return bad;
          const pw = bearer(req);
          if (pw instanceof Response) return pw;
          if (pw === null) return error(401, "missing password: send it as Authorization: Bearer <password>", { "WWW-Authenticate": "Bearer" });
          return json(200, await keeper.incrementMedalTally(segs[1], segs[2], pw, req.headers.get("idempotency-key") ?? undefined));
        }
        case "setscore": {
          const bad = need("POST") ?? arity(segs, 2, "/setScore/:event");
          if (bad) return bad;
          const pw = bearer(req);
          if (pw instanceof Response) return pw;
          if (pw === null) return error(401, "missing password: send it as Authorization: Bearer <password>", { "WWW-Authenticate": "Bearer" });
          let body: unknown;
          try {
            body = JSON.parse(await req.text());
          } catch {
            return error(400, "the body must be JSON scores, e.g. {\"Gaul\": 3, \"Rome\": 1}");
          }
          return json(200, await keeper.setScore(segs[1], body, pw, req.headers.get("idempotency-key") ?? undefined));
        }
        default:
          return error(404, `no route ${JSON.stringify(url.pathname.slice(0, 100))}; routes: ${ROUTES.join("; ")}`);
      }
    } catch (e) {
      if (e instanceof RpcError) return fromRpc(e);
      throw e;
    }
  };
}

function arity(segs: string[], n: number, shape: string): Response | null {
  if (segs.length === n) return null;
  const what = segs.length < n ? "missing a name" : "too many path segments";
  return error(404, `${what}: use ${shape}; teams: ${TEAMS.join(", ")}; events: ${EVENTS.join(", ")}; medals: ${MEDALS.join(", ")}`);
}
