/**
 * Where every worker thread's CPU went, JavaScript functions named: `bun --cpu-prof` does not see
 * worker threads, and `perf` sees them but not which JS function a JIT address belongs to. Bun's
 * JavaScriptCore writes a jitdump (every piece of code it compiles: address, size, name and tier)
 * when asked, and this joins it with perf's samples:
 *
 *   BUN_JSC_useJITDump=1 BUN_JSC_jitDumpDirectory=/tmp/jd bun bench push-pull --stages push --tablets 500
 *   perf record -k 1 -a -g -o /tmp/p.data -- sleep 20        # meanwhile, in the window (Linux, perf installed)
 *   bun bench/lib/perf-threads.ts /tmp/p.data /tmp/jd/jit-*.dump --comm Worker
 *
 * It prints the samples per thread name split into kernel, Bun's own code, JIT-compiled JS and the
 * rest, then the JS functions of the chosen threads with the tier each ran in (Baseline, DFG, FTL):
 * a function a thread ran only a few hundred times is still in a low tier (each worker thread has
 * its own VM and compiles its own code). `-k 1` makes perf stamp samples with the clock the jitdump
 * uses, so a sample is named after the code that was at its address then (JIT memory is reused).
 */
import { spawnSync } from "bun";

/** One piece of compiled code, as the jitdump announced it (JIT_CODE_LOAD). */
export interface JitCode {
  start: number;
  size: number;
  /** e.g. "JSC-DFG: deliver#BT4GRG", "JSC-Thunk: CallTrampoline". */
  name: string;
  /** When it was loaded, in the jitdump's clock (ns; CLOCK_MONOTONIC with -k 1). */
  loadedNs: number;
}

const JITDUMP_MAGIC = 0x4a695444; // "JiTD", written little-endian
const RECORD_CODE_LOAD = 0;
const RECORD_HEADER_BYTES = 16;
/** After a load record's header: pid, tid (u32), vma, code address, code size, code index (u64). */
const CODE_LOAD_FIXED_BYTES = 40;

/** Every code load in a jitdump file (the format of linux tools/perf/Documentation/jitdump-specification.txt). */
export function parseJitDump(bytes: Uint8Array): JitCode[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 40 || view.getUint32(0, true) !== JITDUMP_MAGIC) throw new Error("not a jitdump file (no little-endian JiTD magic)");
  const headerBytes = view.getUint32(8, true);
  const decoder = new TextDecoder();
  const codes: JitCode[] = [];
  for (let off = headerBytes; off + RECORD_HEADER_BYTES <= bytes.byteLength; ) {
    const id = view.getUint32(off, true);
    const total = view.getUint32(off + 4, true);
    if (total < RECORD_HEADER_BYTES || off + total > bytes.byteLength) break; // a record cut short: the process was still writing
    if (id === RECORD_CODE_LOAD && total >= RECORD_HEADER_BYTES + CODE_LOAD_FIXED_BYTES) {
      const fixed = off + RECORD_HEADER_BYTES;
      const nameStart = fixed + CODE_LOAD_FIXED_BYTES;
      const nameEnd = bytes.indexOf(0, nameStart);
      if (nameEnd < 0 || nameEnd >= off + total) break;
      codes.push({
        start: Number(view.getBigUint64(fixed + 16, true)),
        size: Number(view.getBigUint64(fixed + 24, true)),
        name: decoder.decode(bytes.subarray(nameStart, nameEnd)),
        loadedNs: Number(view.getBigUint64(off + 8, true)),
      });
    }
    off += total;
  }
  return codes;
}

/** Names JIT addresses: the code that held an address at a given time (JIT memory is freed and reused). */
export class JitSymbols {
  private readonly codes: JitCode[];
  private readonly starts: number[];
  private readonly largest: number;

  constructor(codes: JitCode[]) {
    this.codes = [...codes].sort((a, b) => a.start - b.start);
    this.starts = this.codes.map((c) => c.start);
    this.largest = this.codes.reduce((m, c) => Math.max(m, c.size), 0);
  }

  /** The code at `ip`: of the pieces covering it, the last loaded at or before `atNs` (the last loaded at all without a time). */
  lookup(ip: number, atNs = Infinity): JitCode | null {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= ip) lo = mid + 1;
      else hi = mid;
    }
    let best: JitCode | null = null;
    for (let i = lo - 1; i >= 0 && this.starts[i]! > ip - this.largest - 1; i--) {
      const c = this.codes[i]!;
      if (ip < c.start + c.size && c.loadedNs <= atNs && (!best || c.loadedNs > best.loadedNs)) best = c;
    }
    return best;
  }
}

/** One sample of `perf script -F comm,tid,time,ip,dso --max-stack=1`: which thread, when, where. */
export interface Sample {
  comm: string;
  timeNs: number;
  ip: number;
  dso: string;
}

/**
 * Samples from perf script's text: a header line "comm tid time:" (a thread's name may hold
 * spaces), then the sampled address and its object "\t<hex> (<dso>)"; callers' frames, if any, and
 * blank lines are skipped.
 */
export function parsePerfScript(text: string): Sample[] {
  const samples: Sample[] = [];
  let head: { comm: string; timeNs: number } | null = null;
  for (const line of text.split("\n")) {
    const h = /^\s*(.*?)\s+\d+\s+(\d+\.\d+):\s*$/.exec(line);
    if (h) {
      head = { comm: h[1]!, timeNs: Math.round(Number(h[2]) * 1e9) };
      continue;
    }
    const f = /^\s+([0-9a-f]+)\s+\((.*)\)\s*$/.exec(line);
    if (!f || !head) continue;
    samples.push({ comm: head.comm, timeNs: head.timeNs, ip: Number.parseInt(f[1]!, 16), dso: f[2]! });
    head = null; // only the sampled frame: the rest are callers
  }
  return samples;
}

export type CodeKind = "kernel" | "bun" | "js" | "other";

/** JIT code: perf names the object after the map file JSC keeps for the process. */
const isJit = (dso: string) => /\/perf-\d+\.map$/.test(dso);

function kindOf(dso: string): CodeKind {
  if (isJit(dso)) return "js";
  if (dso.includes("kernel")) return "kernel";
  if (/\bbun(\.exe|-exe)?$/.test(dso)) return "bun";
  return "other";
}

export interface ThreadProfile {
  /** Per thread name: samples in all and per kind of code. */
  threads: Array<{ comm: string; samples: number } & Record<CodeKind, number>>;
  /** JS functions of the chosen threads by samples (the name holds the tier, as JSC gave it). */
  functions: Array<{ name: string; samples: number }>;
}

export function profileThreads(samples: Sample[], symbols: JitSymbols, comm?: string): ThreadProfile {
  const threads = new Map<string, { comm: string; samples: number } & Record<CodeKind, number>>();
  const functions = new Map<string, number>();
  for (const s of samples) {
    const kind = kindOf(s.dso);
    let t = threads.get(s.comm);
    if (!t) threads.set(s.comm, (t = { comm: s.comm, samples: 0, kernel: 0, bun: 0, js: 0, other: 0 }));
    t.samples++;
    t[kind]++;
    if (kind === "js" && (comm === undefined || s.comm === comm)) {
      const name = symbols.lookup(s.ip, s.timeNs)?.name ?? "(JIT code not in the jitdump)";
      functions.set(name, (functions.get(name) ?? 0) + 1);
    }
  }
  return {
    threads: [...threads.values()].sort((a, b) => b.samples - a.samples),
    functions: [...functions].map(([name, n]) => ({ name, samples: n })).sort((a, b) => b.samples - a.samples),
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const commAt = args.indexOf("--comm");
  const comm = commAt >= 0 ? args[commAt + 1] : undefined;
  const [data, dump] = commAt < 0 ? args : args.filter((_, i) => i !== commAt && i !== commAt + 1);
  if (!data || !dump || (commAt >= 0 && !comm)) {
    console.error("usage: bun bench/lib/perf-threads.ts <perf.data> <jit-PID.dump> [--comm <thread name>]");
    process.exit(2);
  }
  let symbols: JitSymbols;
  try {
    symbols = new JitSymbols(parseJitDump(new Uint8Array(await Bun.file(dump).arrayBuffer())));
  } catch (e) {
    console.error(`${dump}: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  let out: ReturnType<typeof spawnSync>;
  try {
    out = spawnSync(["perf", "script", "-i", data, "-F", "comm,tid,time,ip,dso", "--max-stack=1"], { stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    console.error(`cannot run perf (is it installed?): ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  if (out.exitCode !== 0) {
    console.error(`perf script failed: ${out.stderr?.toString().trim()}`);
    process.exit(1);
  }
  const p = profileThreads(parsePerfScript(out.stdout?.toString() ?? ""), symbols, comm);
  const pct = (n: number, of: number) => `${((100 * n) / Math.max(of, 1)).toFixed(1)}%`;
  console.log("thread            samples   kernel    bun       JS        other");
  for (const t of p.threads.slice(0, 12)) console.log(`${t.comm.padEnd(16)}  ${String(t.samples).padStart(7)}   ${pct(t.kernel, t.samples).padEnd(8)}  ${pct(t.bun, t.samples).padEnd(8)}  ${pct(t.js, t.samples).padEnd(8)}  ${pct(t.other, t.samples)}`);
  const js = p.functions.reduce((n, f) => n + f.samples, 0);
  console.log(`\nJS functions${comm ? ` in ${comm} threads` : ""} (${js} samples):`);
  for (const f of p.functions.slice(0, 30)) console.log(`${String(f.samples).padStart(7)}  ${pct(f.samples, js).padStart(6)}  ${f.name}`);
}
