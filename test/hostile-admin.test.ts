/**
 * Hostile requests to the admin API: each gets a 4xx JSON error (never a 500) and changes nothing;
 * HEAD on a GET route answers as GET without the body.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAdmin } from "../src/main/admin.ts";
import { startCluster, type ThreadCluster } from "../src/main/supervisor.ts";
import { kvNodes } from "./helpers.ts";
import { dropMidBody, rawHttp } from "./raw-http.ts";

setDefaultTimeout(30_000);

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const SECRET = "hostile-admin-secret";
const AUTH = `Authorization: Bearer ${SECRET}\r\n`;
let cluster: ThreadCluster;
let admin: ReturnType<typeof startAdmin>;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "menhir-hostile-admin-"));
  cluster = await startCluster({ system: FIXTURE, nodes: kvNodes(2), seed: 1, dataDir: dir, logLevel: "silent" });
  admin = startAdmin({ port: 0, secret: SECRET, cluster });
});
afterAll(async () => {
  admin.stop(true);
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

const raw = (head: string, body = "") => rawHttp(admin.port!, `${head}\r\n${AUTH}Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
const statuses = async () => (await cluster.info()).map((n) => `${n.id}:${n.status}:${n.incarnation}`);

describe("hostile admin API", () => {
  test("a node id that is not valid URL encoding: 400, and no node touched", async () => {
    const before = await statuses();
    for (const id of ["%", "%E0%A4%A", "n1%"]) {
      const r = await raw(`POST /nodes/${id}/crash HTTP/1.1\r\nHost: x`);
      expect({ id, status: r.status }).toEqual({ id, status: 400 });
      expect(JSON.parse(r.body).error.code).toBe(400);
    }
    expect(await statuses()).toEqual(before);
  });

  test("no Host header, or CONNECT host:port: 400, not 500", async () => {
    for (const head of ["GET /nodes HTTP/1.0", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443", "CONNECT example.com:443 HTTP/1.1"]) {
      const r = await raw(head);
      expect({ head, status: r.status }).toEqual({ head, status: 400 });
    }
  });

  test("HEAD on a GET route answers as GET, without the body", async () => {
    for (const path of ["/nodes", "/network"]) {
      const g = await raw(`GET ${path} HTTP/1.1\r\nHost: x`);
      const h = await raw(`HEAD ${path} HTTP/1.1\r\nHost: x`);
      expect({ path, status: h.status }).toEqual({ path, status: 200 });
      expect(h.body).toBe("");
      expect(h.headers["content-length"]).toBe(String(Buffer.byteLength(g.body)));
    }
    // Auth first, whatever the method.
    expect((await rawHttp(admin.port!, "HEAD /nodes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status).toBe(401);
  });

  test("PUT /network refuses unknown keys inside a link's settings and a partition, and changes nothing", async () => {
    const before = JSON.stringify(cluster.network());
    for (const [body, pattern] of [
      [{ links: { "n1->n2": { los: 0.5 } } }, /unknown setting "los" in links\["n1->n2"\]/],
      [{ links: { "n1->n2": { loss: 0.5, bogus: true } } }, /unknown setting "bogus"/],
      [{ links: { "n1->n2": [] } }, /must be an object/],
      [{ partitions: [{ from: ["n1"], to: ["n2"], oneway: true }] }, /unknown key "oneway" in partitions\[0\]/],
    ] as const) {
      const r = await raw("PUT /network HTTP/1.1\r\nHost: x", JSON.stringify(body));
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error.message).toMatch(pattern);
    }
    expect(JSON.stringify(cluster.network())).toBe(before);
  });

  test("a client hanging up mid-body changes nothing; the API keeps answering", async () => {
    const before = JSON.stringify(cluster.network());
    for (let i = 0; i < 20; i++) await dropMidBody(admin.port!, "/network", AUTH);
    expect(JSON.stringify(cluster.network())).toBe(before);
    expect((await raw("GET /nodes HTTP/1.1\r\nHost: x")).status).toBe(200);
  });
});
