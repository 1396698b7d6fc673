/**
 * Where a measurement window's CPU went, by kind of thread of this process: the nodes' own threads
 * ("Worker"), the main thread, JavaScriptCore's JIT compiler ("JITWorker") and collector helpers
 * ("HeapHelper"), the allocator's background purge ("mi-scavenger")... A window in which the JIT
 * is still compiling, or the allocator is busy handing pages back, is not the steady state it
 * claims to be, and process.cpuUsage() alone cannot tell. Linux only (/proc/self/task); elsewhere
 * null.
 */
import { readFileSync, readdirSync } from "node:fs";

/** The name Bun gives every Worker's thread: a node's, in a cluster; a bare worker's, in a floor. */
const WORKER_THREAD_NAME = "Worker";

/** Clock ticks per second in /proc's stat files: USER_HZ, 100 on every Linux ABI Bun runs on. */
const TICKS_PER_SECOND = 100;

/** Per thread id: its name, CPU ticks (user + system) and voluntary context switches so far. */
export type ThreadCpuSnapshot = Map<string, { name: string; ticks: number; wakes: number }>;

/** A /proc/<pid>/task/<tid>/stat line: the thread's name and its user + system ticks, or null if it is not one. */
export function parseTaskStat(line: string): { name: string; ticks: number } | null {
  // The name sits in parentheses and may itself hold spaces or parentheses: it ends at the last ")".
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  const fields = line.slice(close + 2).split(" ");
  // After the name: state is field 3 of the file, utime 14 and stime 15, so 11 and 12 here.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) return null;
  return { name: line.slice(open + 1, close), ticks: utime + stime };
}

/**
 * A thread's voluntary context switches so far, from its /proc status file, or null: each is one time
 * it went to sleep with nothing to do and was woken again, as a node's thread is by a message.
 */
export function parseVoluntarySwitches(status: string): number | null {
  const m = /^voluntary_ctxt_switches:\s*(\d+)$/m.exec(status);
  return m ? Number(m[1]) : null;
}

export function threadCpuSnapshot(): ThreadCpuSnapshot | null {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return null;
  }
  const snap: ThreadCpuSnapshot = new Map();
  for (const tid of tids) {
    try {
      const t = parseTaskStat(readFileSync(`/proc/self/task/${tid}/stat`, "utf8"));
      if (t) snap.set(tid, { ...t, wakes: parseVoluntarySwitches(readFileSync(`/proc/self/task/${tid}/status`, "utf8")) ?? 0 });
    } catch {
      // The thread ended between the listing and the read: its time is lost to both snapshots alike.
    }
  }
  return snap;
}

/** CPU ms per thread name between two snapshots, largest first; threads that started in between count from zero. */
export function threadCpuMsSince(before: ThreadCpuSnapshot | null, after: ThreadCpuSnapshot | null = threadCpuSnapshot()): Record<string, number> | null {
  if (!before || !after) return null;
  const byName = new Map<string, number>();
  for (const [tid, t] of after) {
    const ticks = t.ticks - (before.get(tid)?.ticks ?? 0);
    if (ticks > 0) byName.set(t.name, (byName.get(t.name) ?? 0) + ticks);
  }
  return Object.fromEntries([...byName].sort((a, b) => b[1] - a[1]).map(([name, ticks]) => [name, (ticks * 1000) / TICKS_PER_SECOND]));
}

/**
 * How many times the threads called `name` slept and were woken between two snapshots (threads that
 * started in between count from zero). Divided by a window's deliveries it says whether a node's
 * thread wakes once per message or more: each wake of a thread that had gone to sleep costs tens of
 * µs of the kernel's and Bun's work before any of the node's code runs.
 */
export function threadWakesSince(before: ThreadCpuSnapshot | null, after: ThreadCpuSnapshot | null, name: string): number | null {
  if (!before || !after) return null;
  let wakes = 0;
  for (const [tid, t] of after) if (t.name === name) wakes += t.wakes - (before.get(tid)?.wakes ?? 0);
  return wakes;
}

/** What a window did by thread, from `before` to now: CPU ms by name (threadCpuMsSince) and the worker threads' wakes (threadWakesSince). */
export function threadWindowSince(before: ThreadCpuSnapshot | null): { cpuMsByThread: Record<string, number> | null; workerWakes: number | null } {
  const after = threadCpuSnapshot();
  return { cpuMsByThread: threadCpuMsSince(before, after), workerWakes: threadWakesSince(before, after, WORKER_THREAD_NAME) };
}

/** "Worker 740 ms, mi-scavenger 130 ms, ..." for a report (the first `top` names). */
export function formatThreadCpu(ms: Record<string, number> | null | undefined, top = 5): string {
  if (!ms) return "n/a (no /proc)";
  const parts = Object.entries(ms)
    .slice(0, top)
    .map(([name, v]) => `${name} ${Math.round(v)} ms`);
  return parts.length > 0 ? parts.join(", ") : "none measured";
}
