/** Storage keys that sort in numeric order (a log's entries, a sequence): pure, so roles may import it. */
export function seqKey(prefix: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`seqKey needs a non-negative integer, got ${n}`);
  return prefix + n.toString().padStart(16, "0");
}
