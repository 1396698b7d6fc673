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
  [/\bperformance\.now\s*\(/, "performance.now"],
  [/(?<![.\w])setTimeout\s*\(/, "setTimeout"],
  [/(?<![.\w])setInterval\s*\(/, "setInterval"],
  [/(?<![.\w])setImmediate\s*\(/, "setImmediate"],
  [/\bMath\.random\s*\(/, "Math.random"],
  [/\bcrypto\.(getRandomValues|randomUUID)\b/, "crypto randomness"],
  [/from\s+["'](node:)?(fs|fs\/promises|net|dgram|http|https|child_process|tls)["']/, "file or socket module"],
  [/from\s+["']bun:sqlite["']/, "bun:sqlite"],
  [/\bBun\.(file|write|serve|listen|connect|spawn)\b/, "Bun I/O"],
  [/(?<![.\w])fetch\s*\(/, "fetch"],
  [/from\s+["']hyperid["']/, "hyperid (use node.uid())"],
  [/(?<![.\w])process\./, "process (environment, exit, stdio)"],
  [/(?<![.\w])require\s*\(/, "require"],
];

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
    return !r.startsWith("runtime/") && r !== "registry.ts" && !r.endsWith("/scenario.ts");
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

  test("the checker itself catches a forbidden call", () => {
    const sample = stripComments("const t = Date.now(); // fine in a comment: Math.random()\nsetTimeout(() => {}, 1);");
    const hits = FORBIDDEN.filter(([re]) => re.test(sample)).map(([, n]) => n);
    expect(hits).toEqual(["Date.now", "setTimeout"]);
  });
});
