import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Mutual challenge–response between hosts: each side proves it holds the shared secret by an HMAC
 * over the other side's fresh nonce and both host names. The secret never crosses the wire.
 */
export function nonce(): string {
  return randomBytes(16).toString("hex");
}

export function proof(secret: string, role: "dialer" | "listener", theirNonce: string, myHost: string, theirHost: string): string {
  return createHmac("sha256", secret).update(`${role}|${theirNonce}|${myHost}|${theirHost}`).digest("hex");
}

export function proofMatches(expected: string, given: unknown): boolean {
  if (typeof given !== "string" || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}
