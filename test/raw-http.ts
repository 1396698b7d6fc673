/**
 * Test helpers for hostile HTTP: raw requests a fetch() cannot make (no Host header, CONNECT, a body
 * cut short), and a CLI run to aim them at.
 */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends raw bytes and reads one response; the request should make the server close (HTTP/1.0 or Connection: close). */
export async function rawHttp(port: number, request: string, timeoutMs = 5000): Promise<RawResponse> {
  const chunks: Uint8Array[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no complete answer within ${timeoutMs} ms to ${JSON.stringify(request.slice(0, 60))}`)), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void s.write(request),
        data: (_s, d) => void chunks.push(new Uint8Array(d)),
        close: done,
        error: done,
      },
    }).catch(reject);
  });
  const text = new TextDecoder().decode(Buffer.concat(chunks));
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(split + 4) };
}

/** A client that announces a body, sends part of it, and hangs up. */
export async function dropMidBody(port: number, path: string, extraHeaders = ""): Promise<void> {
  const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
  sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\n${extraHeaders}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na`);
  sock.flush();
  await Bun.sleep(5);
  sock.end();
}

const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;

/** A cluster run by the CLI until stop(); resolves once stdout matches `ready`. */
export async function startCli(args: string[], ready: RegExp, env: Record<string, string> = {}) {
  const p = Bun.spawn([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const stderr = new Response(p.stderr).text();
  const reader = p.stdout.getReader();
  let out = "";
  while (!ready.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the run ended before it was ready:\n${out}\n${await stderr}`);
    out += new TextDecoder().decode(value);
  }
  return {
    match: ready.exec(out)!,
    /** Ctrl-C, then everything it printed. */
    async stop(): Promise<{ code: number; out: string; err: string }> {
      p.kill("SIGINT");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      return { code: await p.exited, out, err: await stderr };
    },
  };
}
