/**
 * Hostile HTTP against obelix, on the real server (threads, via the CLI): every odd request gets a
 * 4xx and changes nothing, HEAD answers as GET without a body, and clients that hang up mid-body are
 * not errors of ours.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropMidBody, rawHttp, startCli } from "./raw-http.ts";

setDefaultTimeout(60_000);

const PASSWORD = "hostile-test-password";
const dir = mkdtempSync(join(tmpdir(), "menhir-hostile-olympics-"));
let run: Awaited<ReturnType<typeof startCli>>;
let port: number;
let stopped: { code: number; out: string; err: string } | null = null;

beforeAll(async () => {
  // Cacofonix in testing mode writes only Gaul's golds and Stone Curling: Stone Skating is this test's.
  run = await startCli(
    ["olympics", "--pull", "0", "--push", "0", "--mode", "testing", "--rate", "200", "--port", "0", "--data-dir", dir, "--fresh", "--seed", "1"],
    /obelix serves HTTP at http:\/\/127\.0\.0\.1:(\d+)/,
    { MENHIR_OLYMPICS_PASSWORD: PASSWORD },
  );
  port = Number(run.match[1]);
});
afterAll(async () => {
  if (!stopped) await run.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string) => rawHttp(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

describe("hostile HTTP: obelix", () => {
  test("no Host header, or CONNECT host:port: 400, not 500", async () => {
    for (const req of ["GET /getMedalTally/Gaul HTTP/1.0\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\n\r\n"]) {
      const r = await rawHttp(port, req);
      expect({ req, status: r.status }).toEqual({ req, status: 400 });
    }
  });

  test("HEAD answers as GET, without the body", async () => {
    for (const path of ["/", "/getMedalTally/Rome", "/getScore/stone-skating", "/getMedalTally/Atlantis"]) {
      const g = await get(path);
      const h = await rawHttp(port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect({ path, status: h.status }).toEqual({ path, status: g.status });
      expect(h.body).toBe("");
      expect(h.headers["content-length"]).toBe(String(Buffer.byteLength(g.body)));
    }
  });

  test("clients hanging up mid-body change nothing and log no error", async () => {
    const before = (await get("/getScore/Stone%20Skating")).body;
    for (let i = 0; i < 40; i++) await dropMidBody(port, "/setScore/Stone%20Skating", `Authorization: Bearer ${PASSWORD}\r\n`);
    expect((await get("/getScore/Stone%20Skating")).body).toBe(before);
    stopped = await run.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.err).not.toMatch(/ ERROR /);
  });
});
