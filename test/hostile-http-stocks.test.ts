/**
 * Hostile HTTP against the stocks front end, on the real server (threads, via the CLI): every odd
 * request gets a 4xx and changes nothing, HEAD answers as GET without a body, and clients that hang
 * up mid-body are not errors of ours.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropMidBody, rawHttp, startCli } from "./raw-http.ts";

setDefaultTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "menhir-hostile-stocks-"));
let run: Awaited<ReturnType<typeof startCli>>;
let port: number;
let stopped: { code: number; out: string; err: string } | null = null;

beforeAll(async () => {
  // No client nodes: nothing but this test trades, so "changes nothing" can be checked exactly.
  run = await startCli(["stocks", "--clients", "0", "--port", "0", "--data-dir", dir, "--fresh", "--seed", "1"], /frontend serves HTTP at http:\/\/127\.0\.0\.1:(\d+)/);
  port = Number(run.match[1]);
});
afterAll(async () => {
  if (!stopped) await run.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => rawHttp(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

describe("hostile HTTP: stocks front end", () => {
  test("no Host header, or CONNECT host:port: 400, not 500", async () => {
    for (const req of ["GET /stocks/nvidia HTTP/1.0\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\n\r\n"]) {
      const r = await rawHttp(port, req);
      expect({ req, status: r.status }).toEqual({ req, status: 400 });
    }
  });

  test("HEAD answers as GET, without the body", async () => {
    for (const path of ["/stocks/nvidia", "/stocks/no-such-stock", "/orders/12345"]) {
      const g = await get(path);
      const h = await rawHttp(port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect({ path, status: h.status }).toEqual({ path, status: g.status });
      expect(h.body).toBe("");
      expect(h.headers["content-length"]).toBe(String(Buffer.byteLength(g.body)));
      expect(h.headers["content-type"]).toBe(g.headers["content-type"]!);
    }
  });

  test("clients hanging up mid-body change nothing and log no error; the run still stops cleanly", async () => {
    const before = await get("/stocks/nvidia");
    expect(before.status).toBe(200);
    for (let i = 0; i < 40; i++) await dropMidBody(port, "/orders");
    // A complete order after them still works, and is the only change.
    const order = await rawHttp(port, `POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 45\r\n\r\n${JSON.stringify({ name: "nvidia", type: "sell", quantity: 2 }).padEnd(45)}`);
    expect(order.status).toBe(200);
    const after = JSON.parse((await get("/stocks/nvidia")).body);
    expect(after.data.quantity).toBe(JSON.parse(before.body).data.quantity + 2);
    stopped = await run.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.err).not.toMatch(/ ERROR /);
  });
});
