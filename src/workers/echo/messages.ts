/** The echo protocol: a client sends `echo` with a payload; the server replies `echo_ok` with the same payload. */
export interface Echo {
  type: "echo";
  echo: string;
  [k: string]: unknown;
}
export interface EchoOk {
  type: "echo_ok";
  echo: string;
  [k: string]: unknown;
}

export interface EchoClientConfig {
  server: string;
  /** Gap between requests, ms. 0: one request after another, as fast as replies come. */
  intervalMs: number;
  timeoutMs: number;
  [k: string]: unknown;
}

export interface EchoClientState {
  sent: number;
  ok: number;
  /** Replies whose payload differs from the request's: must stay 0. */
  mismatched: number;
  /** Requests that ended in an error, or timed out with no reply since. */
  failed: number;
  /** Requests that timed out but whose reply came later (an overloaded machine, not a lost message). */
  slow: number;
  latenciesMs: number[];
}
