import type { LogLevel, Logger } from "./types.ts";

export type EmitLevel = Exclude<LogLevel, "silent">;

/** Numeric rank of each level: a line is shown when its rank reaches the threshold. */
export const LOG_LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function formatLogLine(stamp: string, node: string, level: EmitLevel, text: string, fields?: Record<string, unknown>): string {
  return `${stamp} ${node} ${level.toUpperCase()} ${text}${fields ? " " + JSON.stringify(fields) : ""}`;
}

/** A Logger that forwards lines at or above `threshold` to `emit`. */
export function makeLogger(threshold: LogLevel, emit: (level: EmitLevel, text: string, fields?: Record<string, unknown>) => void): Logger {
  const rank = LOG_LEVELS[threshold];
  const at = (level: EmitLevel) => (text: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS[level] >= rank) emit(level, text, fields);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), enabled: (level) => LOG_LEVELS[level] >= rank };
}

/** Wall-clock stamp for threaded runs (HH:MM:SS.mmm). */
export function wallStamp(): string {
  return new Date().toISOString().slice(11, 23);
}

/** Errors and warnings to stderr, the rest to stdout. */
export function printLine(level: EmitLevel, line: string): void {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}
