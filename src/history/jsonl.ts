/**
 * The history file format: JSON Lines, one completed operation per line, fields in a fixed order
 * (`process`, `type`, `f`, `value`, `invokeMs`, `completeMs`, then the system's fields), so other
 * tools can read it. Documented in the README; keep it stable.
 */
import { MAX_HISTORY_OPS, MAX_LINE_CHARS, invalidOp, type History, type Op } from "./op.ts";

const FIXED = ["process", "type", "f", "value", "invokeMs", "completeMs"] as const;

/** One line (no newline) for an operation. */
export function opToLine(op: Op): string {
  const out: Record<string, unknown> = {};
  for (const k of FIXED) out[k] = op[k] === undefined ? null : op[k];
  for (const k of Object.keys(op).sort()) if (!(FIXED as readonly string[]).includes(k) && op[k] !== undefined) out[k] = op[k];
  return JSON.stringify(out);
}

/** The whole history as JSON Lines (newline-terminated, empty for an empty history). */
export function toJsonLines(history: readonly Op[]): string {
  if (history.length > MAX_HISTORY_OPS) throw new Error(`history has ${history.length} operations, more than the ${MAX_HISTORY_OPS} a history file may hold`);
  return history.map((op) => opToLine(op) + "\n").join("");
}

/** Parses JSON Lines into a history; a bad line is an Error naming its line number. Blank lines are skipped. */
export function parseJsonLines(text: string): History {
  const out: History = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    if (line.length > MAX_LINE_CHARS) throw new Error(`line ${i + 1}: longer than ${MAX_LINE_CHARS} characters`);
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new Error(`line ${i + 1}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const why = invalidOp(v);
    if (why) throw new Error(`line ${i + 1}: not an operation: ${why}`);
    if (out.length >= MAX_HISTORY_OPS) throw new Error(`more than ${MAX_HISTORY_OPS} operations`);
    out.push(v as Op);
  }
  return out;
}

export async function writeHistoryFile(path: string, history: readonly Op[]): Promise<void> {
  await Bun.write(path, toJsonLines(history));
}

export async function readHistoryFile(path: string): Promise<History> {
  return parseJsonLines(await Bun.file(path).text());
}
