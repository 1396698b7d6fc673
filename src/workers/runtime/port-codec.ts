/**
 * What a node message looks like on a MessageChannel between worker threads. Posting a string skips
 * structured serialisation on both ends: for a small message (a push to a tablet) JSON text costs
 * about half of what the object does, to send and to receive — and a fan-out pays it once per
 * recipient. So a message that JSON carries exactly (plain objects, dense arrays, strings, finite
 * numbers other than -0, booleans, null) goes as JSON text; any other message (undefined, NaN, a
 * Map, a typed array, a bigint, a cycle, a very large one...) goes as the object itself, as before.
 * Node messages are objects, so a string on a link is always one encoded here.
 */
import { PLAIN_MAX_DEPTH, PLAIN_MAX_VALUES, plainShape, type Budget } from "./clone.ts";
import type { Message } from "./types.ts";

/** True when JSON.parse(JSON.stringify(v)) equals v exactly. */
function jsonExact(v: unknown, depth: number, budget: Budget): boolean {
  if (--budget.values < 0) return false;
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0);
    case "object":
      break;
    default:
      return false;
  }
  if (v === null) return true;
  // Deeper or larger messages are posted as objects: for them serialisation is no longer the cost that dominates.
  if (depth >= PLAIN_MAX_DEPTH) return false;
  const shape = plainShape(v);
  if (shape === "array") {
    const a = v as unknown[];
    for (let i = 0; i < a.length; i++) if (!(i in a) || !jsonExact(a[i], depth + 1, budget)) return false;
    return true;
  }
  if (shape === null) return false;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k === "__proto__" || !jsonExact(o[k], depth + 1, budget)) return false;
  return true;
}

/** The form to post: JSON text when it carries the message exactly, else the message. */
export function toPort(msg: Message): Message | string {
  return jsonExact(msg, 0, { values: PLAIN_MAX_VALUES }) ? JSON.stringify(msg) : msg;
}

/** What arrived on a link, decoded. Text that does not parse is handed on as is, for the runtime to refuse as malformed. */
export function fromPort(data: unknown): unknown {
  if (typeof data !== "string") return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}
