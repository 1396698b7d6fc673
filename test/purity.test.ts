/**
 * Node code reaches the world only through its context; that is what lets one role run on threads,
 * over TCP and in the simulator. This test reads every file under src/workers/ outside the runtime
 * (and outside the driver-side scenario.ts files) and fails on a forbidden call.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = new URL("../src/workers/", import.meta.url).pathname;
const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\.now\s*\(/, "Date.now"],
  [/\bnew Date\s*\(\s*\)/, "new Date()"],
  [/\bperformance\./, "performance (the real clock)"],
  [/(?<![.\w])(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|queueMicrotask)\b(?!\s*:)/, "global timers or microtask scheduling"],
  [/\bglobalThis\b/, "globalThis"],
  [/\bMath\.random\b/, "Math.random"],
  [/\bcrypto\b/, "crypto (randomness)"],
  [/\bBun\.(?!hash\b)\w+/, "Bun APIs other than Bun.hash (sleep, files, sockets, processes)"],
  [/(?<![.\w])fetch\s*\(/, "fetch"],
  // A property named `process` (a history operation's field) is not the global.
  [/(?<![.\w])process\b(?!\s*:)/, "process (environment, exit, stdio, nextTick)"],
  [/(?<![.\w])require\s*\(/, "require"],
  [/(?<![.\w])import\s*\(/, "dynamic import"],
  [/\b(Worker|MessageChannel|SharedArrayBuffer|Atomics|WebSocket)\b/, "threads, channels or sockets"],
];

/** What a role may import: files of its own system, and these pure parts of the runtime. */
const ALLOWED_RUNTIME = new Set(["../runtime/types.ts", "../runtime/assert.ts", "../runtime/limits.ts", "../runtime/keys.ts", "../runtime/http.ts"]);

function importOffences(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/\b(?:import|export)\s+(?:type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/g)) {
    const spec = m[1]!;
    // Its own folder, the pure runtime files, and the helpers systems share (src/workers/shared/, itself node code checked here).
    if (/^\.\/[\w.-]+\.ts$/.test(spec) || /^\.\.\/shared\/[\w.-]+\.ts$/.test(spec) || ALLOWED_RUNTIME.has(spec)) continue;
    out.push(`imports "${spec}"`);
  }
  return out;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/.*$/gm, "$1");
}

describe("node code purity", () => {
  const nodeFiles = files(ROOT).filter((f) => {
    const r = relative(ROOT, f);
    // Scenarios (scenario.ts, tiered-scenario.ts) run on the driver, not in nodes.
    return !r.startsWith("runtime/") && r !== "registry.ts" && !r.endsWith("scenario.ts");
  });

  test("there is node code to check", () => {
    expect(nodeFiles.length).toBeGreaterThan(3);
  });

  test("no node code calls the clock, timers, randomness, files or sockets directly", () => {
    const offences: string[] = [];
    for (const f of nodeFiles) {
      const src = stripComments(readFileSync(f, "utf8"));
      for (const [re, name] of FORBIDDEN) if (re.test(src)) offences.push(`${relative(ROOT, f)}: ${name}`);
    }
    expect(offences).toEqual([]);
  });

  test("node code imports only its own system's files and the pure parts of the runtime", () => {
    const offences = nodeFiles.flatMap((f) => importOffences(stripComments(readFileSync(f, "utf8"))).map((o) => `${relative(ROOT, f)}: ${o}`));
    expect(offences).toEqual([]);
  });

  test("the checker itself catches each way around the context", () => {
    const hits = (code: string) => FORBIDDEN.filter(([re]) => re.test(stripComments(code))).map(([, n]) => n);
    expect(hits("const t = Date.now(); // fine in a comment: Math.random()\nsetTimeout(() => {}, 1);")).toEqual(["Date.now", "global timers or microtask scheduling"]);
    expect(hits("node.setTimeout(10, f); node.clearTimer(t); const o = { setTimeout: 1 };")).toEqual([]);
    expect(hits("globalThis.setTimeout(f, 1)")).toEqual(["globalThis"]);
    expect(hits("const g = globalThis; g['set' + 'Timeout'](f)")).toEqual(["globalThis"]);
    expect(hits("await Bun.sleep(10)")).toEqual(["Bun APIs other than Bun.hash (sleep, files, sockets, processes)"]);
    expect(hits("Bun.hash.wyhash(s, 0n)")).toEqual([]);
    expect(hits("queueMicrotask(() => tick())")).toEqual(["global timers or microtask scheduling"]);
    expect(hits("const { randomBytes } = await import('node:crypto')")).toEqual(["crypto (randomness)", "dynamic import"]);
    expect(hits("performance.now()")).toEqual(["performance (the real clock)"]);
    expect(hits("process.nextTick(f)")).toEqual(["process (environment, exit, stdio, nextTick)"]);
    expect(importOffences('import { randomUUID } from "node:crypto";')).toEqual(['imports "node:crypto"']);
    expect(importOffences('import { DRIVER_ID } from "../../driver/cluster.ts";\nimport type { X } from "./messages.ts";')).toEqual(['imports "../../driver/cluster.ts"']);
    expect(importOffences('import { SqliteStorage } from "../runtime/storage.ts";\nimport { assert } from "../runtime/assert.ts";')).toEqual(['imports "../runtime/storage.ts"']);
    expect(importOffences('export { x } from "../stocks/messages.ts";\nimport "./side-effect.ts";')).toEqual(['imports "../stocks/messages.ts"']);
  });
});
