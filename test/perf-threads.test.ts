import { describe, expect, test } from "bun:test";
import { JitSymbols, parseJitDump, parsePerfScript, profileThreads } from "../bench/lib/perf-threads.ts";

/** A jitdump as JavaScriptCore writes one: the 40-byte header, then one JIT_CODE_LOAD record per code. */
function jitdump(loads: Array<{ start: number; size: number; name: string; at: number }>, extra: Uint8Array[] = []): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(40));
  header.setUint32(0, 0x4a695444, true);
  header.setUint32(4, 1, true);
  header.setUint32(8, 40, true);
  parts.push(new Uint8Array(header.buffer));
  for (const l of loads) {
    const name = enc.encode(`${l.name}\0`);
    const code = new Uint8Array(l.size);
    const total = 16 + 40 + name.length + code.length;
    const rec = new DataView(new ArrayBuffer(16 + 40));
    rec.setUint32(0, 0, true);
    rec.setUint32(4, total, true);
    rec.setBigUint64(8, BigInt(l.at), true);
    rec.setBigUint64(16 + 8, BigInt(l.start), true); // vma
    rec.setBigUint64(16 + 16, BigInt(l.start), true); // code address
    rec.setBigUint64(16 + 24, BigInt(l.size), true);
    parts.push(new Uint8Array(rec.buffer), name, code);
  }
  parts.push(...extra);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

describe("naming worker threads' JIT samples (bench/lib/perf-threads.ts)", () => {
  test("a jitdump's code loads are read with address, size, name and time; a cut-short last record is left out", () => {
    const loads = [
      { start: 0x7000, size: 64, name: "JSC-Baseline: deliver#A", at: 100 },
      { start: 0x7100, size: 32, name: "JSC-DFG: asTally#B", at: 200 },
    ];
    const full = jitdump(loads);
    expect(parseJitDump(full)).toEqual(loads.map((l) => ({ start: l.start, size: l.size, name: l.name, loadedNs: l.at })));
    expect(parseJitDump(full.subarray(0, full.length - 10))).toHaveLength(1);
    expect(() => parseJitDump(new Uint8Array(64))).toThrow(/not a jitdump/);
  });

  test("an address is named after the code that held it at the sample's time: JIT memory freed and reused gets its new name", () => {
    const symbols = new JitSymbols(
      parseJitDump(
        jitdump([
          { start: 0x1000, size: 0x100, name: "JSC-Baseline: deliver#A", at: 100 },
          { start: 0x1000, size: 0x80, name: "JSC-DFG: deliver#A", at: 500 },
          { start: 0x2000, size: 0x10, name: "JSC-Thunk: CallTrampoline", at: 50 },
        ]),
      ),
    );
    expect(symbols.lookup(0x1010, 300)?.name).toBe("JSC-Baseline: deliver#A");
    expect(symbols.lookup(0x1010, 600)?.name).toBe("JSC-DFG: deliver#A");
    // Past the newer code's end, only the older covers it.
    expect(symbols.lookup(0x10a0, 600)?.name).toBe("JSC-Baseline: deliver#A");
    expect(symbols.lookup(0x1010)?.name).toBe("JSC-DFG: deliver#A");
    expect(symbols.lookup(0x1010, 50)).toBeNull(); // nothing was loaded there yet
    expect(symbols.lookup(0x2008, 600)?.name).toBe("JSC-Thunk: CallTrampoline");
    expect(symbols.lookup(0x2010, 600)).toBeNull();
    expect(symbols.lookup(0x0fff, 600)).toBeNull();
  });

  test("perf script's samples are split by thread into kernel, Bun, JS and other, and the chosen threads' JS by function", () => {
    const text = [
      "         Worker  4242  10.000001: ",
      "\t          7f0000001010 (/tmp/perf-99.map)",
      "\t          7f0000002000 (/tmp/perf-99.map)", // a caller's frame: not the sample
      "",
      "Heap Collector  4243  10.000002: ",
      "\t          1bfcce6 (/work/node_modules/bun/bin/bun.exe)",
      "",
      "         Worker  4244  10.000003: ",
      "\tffffffff821f4dab ([kernel.kallsyms])",
      "",
      "         Worker  4244  10.000004: ",
      "\t          7f0000009000 (/tmp/perf-99.map)",
      "",
      "            bun  4200  10.000005: ",
      "\t          7f0000001010 (/tmp/perf-99.map)",
      "",
      "         Worker  4245  10.000006: ",
      "\t             f838f (/usr/lib/x86_64-linux-gnu/libc.so.6)",
      "",
    ].join("\n");
    const samples = parsePerfScript(text);
    expect(samples.map((s) => s.comm)).toEqual(["Worker", "Heap Collector", "Worker", "Worker", "bun", "Worker"]);
    expect(samples[0]).toEqual({ comm: "Worker", timeNs: 10_000_001_000, ip: 0x7f0000001010, dso: "/tmp/perf-99.map" });
    const symbols = new JitSymbols([{ start: 0x7f0000001000, size: 0x100, name: "JSC-Baseline: deliver#A", loadedNs: 1 }]);
    const p = profileThreads(samples, symbols, "Worker");
    expect(p.threads[0]).toEqual({ comm: "Worker", samples: 4, kernel: 1, bun: 0, js: 2, other: 1 });
    expect(p.threads.find((t) => t.comm === "Heap Collector")).toEqual({ comm: "Heap Collector", samples: 1, kernel: 0, bun: 1, js: 0, other: 0 });
    // The main thread's JS sample is not a Worker's; JIT code the dump does not name is still JS, and said so.
    expect(p.functions).toEqual([
      { name: "JSC-Baseline: deliver#A", samples: 1 },
      { name: "(JIT code not in the jitdump)", samples: 1 },
    ]);
  });
});
