/**
 * The copy a message gets on its way to a node in the same thread (nodes share no memory, even
 * packed into one worker). structuredClone costs about 3 µs even for a ten-field message, and a
 * fan-out to hundreds of packed nodes pays it once per recipient; most messages are plain data
 * (objects, arrays, strings, numbers, booleans, null, undefined, bigints), which copy an order of
 * magnitude faster by hand. Anything else anywhere in the message — a Map, a Date, a typed array, a
 * class instance, a hole in an array, a function or symbol (which structuredClone refuses) — and
 * the whole message goes to structuredClone, so those keep exactly its behaviour.
 *
 * One difference, on purpose: an object reachable twice within one message is copied twice (the
 * copy is a tree), as the msgpack form a message takes between hosts already does, so node code
 * never sees shared references inside a message on any transport. A cycle, or a message nested
 * deeper than PLAIN_MAX_DEPTH or larger than PLAIN_MAX_VALUES, goes to structuredClone.
 */

/** Both walks over plain data (this copy, and port-codec's JSON check) stop at this depth... */
export const PLAIN_MAX_DEPTH = 32;
/** ...and this many values: past them the native path takes over (its walk pays off for big messages, and a bound keeps ours explicit). */
export const PLAIN_MAX_VALUES = 4096;

/** What a walk over plain data may descend into: an array (the walk checks for holes), or an object whose prototype is Object's or null; anything else is not plain. */
export function plainShape(v: object): "array" | "object" | null {
  const proto = Object.getPrototypeOf(v);
  return proto === Array.prototype ? "array" : proto === Object.prototype || proto === null ? "object" : null;
}

/** Marks a value the hand copy does not take. */
const NOT_PLAIN: unique symbol = Symbol("not plain");

/** Values a walk may still visit (shared down the recursion). */
export interface Budget {
  values: number;
}

function copy(v: unknown, depth: number, budget: Budget): unknown {
  if (--budget.values < 0) return NOT_PLAIN;
  switch (typeof v) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
    case "bigint":
      return v;
    case "object":
      break;
    default:
      return NOT_PLAIN; // functions and symbols: structuredClone throws its own error for them
  }
  if (v === null) return null;
  if (depth >= PLAIN_MAX_DEPTH) return NOT_PLAIN;
  const shape = plainShape(v);
  if (shape === "array") {
    const a = v as unknown[];
    const out = new Array<unknown>(a.length);
    for (let i = 0; i < a.length; i++) {
      if (!(i in a)) return NOT_PLAIN;
      const c = copy(a[i], depth + 1, budget);
      if (c === NOT_PLAIN) return NOT_PLAIN;
      out[i] = c;
    }
    return out;
  }
  if (shape === null) return NOT_PLAIN;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    // An own "__proto__" (JSON.parse and msgpack make them) would set the copy's prototype if assigned.
    if (k === "__proto__") return NOT_PLAIN;
    const c = copy(o[k], depth + 1, budget);
    if (c === NOT_PLAIN) return NOT_PLAIN;
    out[k] = c;
  }
  return out;
}

/** A deep copy of `value` that shares nothing mutable with it: by hand for plain data, else structuredClone's. */
export function cloneMessage<T>(value: T): T {
  const c = copy(value, 0, { values: PLAIN_MAX_VALUES });
  return c === NOT_PLAIN ? structuredClone(value) : (c as T);
}
