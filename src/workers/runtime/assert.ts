/**
 * The one assertion used by all node-side code, the hosts and the simulator: invariants stay checked
 * in production (TigerBeetle style). A failed assertion is a bug in menhir or in a role, never bad
 * input: input is validated and refused with an error before it gets this far.
 */
export class AssertionError extends Error {}

export function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new AssertionError(`assertion failed: ${text}`);
}
