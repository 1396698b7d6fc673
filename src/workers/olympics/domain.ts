import { ErrorCode, RpcError } from "../runtime/types.ts";

/**
 * The Olympics' domain: which teams, events and medals exist, what a medal tally and an event score
 * are, and how untrusted names and values become valid ones. Pure: no node, no storage, so the
 * multi-tier successor reuses it as is.
 */

export const TEAMS = ["Gaul", "Rome", "Carthage", "Greece", "Persia"] as const;
export const EVENTS = ["Stone Curling", "Stone Skating", "Underwater Stone Weaving", "Synchronized Stone Swimming"] as const;
export const MEDALS = ["gold", "silver", "bronze"] as const;

export type Team = (typeof TEAMS)[number];
export type Event = (typeof EVENTS)[number];
export type Medal = (typeof MEDALS)[number];

/**
 * A team's medals. `version` counts the updates applied to it, so a tablet can tell a newer value
 * from a stale or duplicated one whatever order pushes and polls arrive in. `updatedAt` is obelix's
 * clock when it applied the last update (null: never updated).
 */
export interface Tally {
  team: Team;
  gold: number;
  silver: number;
  bronze: number;
  version: number;
  updatedAt: number | null;
}

/** Each team's points in an event; a team absent from `scores` is not (yet) competing in it. */
export type Scores = Partial<Record<Team, number>>;

export interface Score {
  event: Event;
  scores: Scores;
  version: number;
  updatedAt: number | null;
}

/** Bounds on a score value: any sport's points fit, and nothing loses integer precision. */
export const MAX_ABS_SCORE = 1_000_000_000;
/** Longest name we bother matching; a longer one is surely wrong, and echoing it back would be noise. */
const MAX_NAME_CHARS = 100;

export function emptyTally(team: Team): Tally {
  return { team, gold: 0, silver: 0, bronze: 0, version: 0, updatedAt: null };
}

export function emptyScore(event: Event): Score {
  return { event, scores: {}, version: 0, updatedAt: null };
}

export function incremented(t: Tally, medal: Medal, now: number): Tally {
  return { ...t, [medal]: t[medal] + 1, version: t.version + 1, updatedAt: now };
}

export function withScores(s: Score, scores: Scores, now: number): Score {
  return { event: s.event, scores: { ...scores }, version: s.version + 1, updatedAt: now };
}

// Names arrive from URLs and shells: "stone-curling", "STONE_CURLING" and "Stone%20Curling" all mean one event.
function normalize(name: string): string {
  return name.trim().toLowerCase().replace(/[\s_-]+/g, " ");
}

function lookup<T extends string>(all: readonly T[]): Map<string, T> {
  return new Map(all.map((n) => [normalize(n), n]));
}
const TEAM_BY_KEY = lookup(TEAMS);
const EVENT_BY_KEY = lookup(EVENTS);
const MEDAL_BY_KEY = lookup(MEDALS);

function show(v: unknown): string {
  if (typeof v !== "string") return `a ${v === null ? "null" : Array.isArray(v) ? "list" : typeof v}`;
  return JSON.stringify(v.length > MAX_NAME_CHARS ? v.slice(0, MAX_NAME_CHARS) + "…" : v);
}

function finder<T extends string>(byKey: Map<string, T>) {
  return (name: unknown): T | undefined => (typeof name === "string" && name.length <= MAX_NAME_CHARS ? byKey.get(normalize(name)) : undefined);
}
/** The exact names (a value's own team or event must be spelled exactly so). */
const TEAM_NAMES: ReadonlySet<unknown> = new Set(TEAMS);
const EVENT_NAMES: ReadonlySet<unknown> = new Set(EVENTS);
export const findTeam = finder(TEAM_BY_KEY);
export const findEvent = finder(EVENT_BY_KEY);
export const findMedal = finder(MEDAL_BY_KEY);

export function unknownName(kind: "team" | "event" | "medal", name: unknown): RpcError {
  const valid = kind === "team" ? TEAMS : kind === "event" ? EVENTS : MEDALS;
  return new RpcError(ErrorCode.KeyDoesNotExist, `unknown ${kind} ${show(name)}; valid ${kind}s: ${valid.join(", ")}`);
}

export function parseTeam(name: unknown): Team {
  const t = findTeam(name);
  if (!t) throw unknownName("team", name);
  return t;
}

export function parseEvent(name: unknown): Event {
  const e = findEvent(name);
  if (!e) throw unknownName("event", name);
  return e;
}

export function parseMedal(name: unknown): Medal {
  const m = findMedal(name);
  if (!m) throw unknownName("medal", name);
  return m;
}

/** An event's new scores, from untrusted input: an object of team name → finite number. */
export function parseScores(input: unknown): Scores {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new RpcError(ErrorCode.MalformedRequest, `scores must be an object of team → points, e.g. {"Gaul": 3, "Rome": 1}; got ${show(input)}`);
  }
  const out: Scores = {};
  const unknown: string[] = [];
  for (const [name, points] of Object.entries(input)) {
    const team = findTeam(name);
    if (!team) {
      unknown.push(name);
      continue;
    }
    if (out[team] !== undefined) throw new RpcError(ErrorCode.MalformedRequest, `team ${team} appears twice in scores`);
    if (typeof points !== "number" || !Number.isFinite(points) || Math.abs(points) > MAX_ABS_SCORE) {
      throw new RpcError(ErrorCode.MalformedRequest, `score of ${team} must be a number between -${MAX_ABS_SCORE} and ${MAX_ABS_SCORE}; got ${show(points)}`);
    }
    out[team] = points;
  }
  if (unknown.length > 0) {
    throw new RpcError(ErrorCode.KeyDoesNotExist, `unknown team${unknown.length > 1 ? "s" : ""} ${unknown.map(show).join(", ")} in scores; valid teams: ${TEAMS.join(", ")}`);
  }
  return out;
}

/** Split a list of untrusted names into the valid ones (canonical, deduplicated) and the rest. */
export function partitionNames<T extends string>(input: unknown, find: (n: unknown) => T | undefined): { valid: T[]; invalid: string[] } {
  const valid = new Set<T>();
  const invalid: string[] = [];
  const items = Array.isArray(input) ? input : input === undefined ? [] : [input];
  for (const n of items) {
    const v = find(n);
    if (v) valid.add(v);
    else invalid.push(typeof n === "string" ? n.slice(0, MAX_NAME_CHARS) : show(n));
  }
  return { valid: [...valid], invalid };
}

export function formatTally(t: Tally): string {
  return `${t.team}: ${t.gold} gold, ${t.silver} silver, ${t.bronze} bronze`;
}

export function formatScore(s: Score): string {
  const parts = TEAMS.filter((t) => s.scores[t] !== undefined).map((t) => `${t} ${s.scores[t]}`);
  return `${s.event}: ${parts.length > 0 ? parts.join(", ") : "no scores yet"}`;
}

/** A tally from untrusted input (a push or a reply), or undefined if it is not one. */
export function asTally(v: unknown): Tally | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const t = v as Record<string, unknown>;
  // A value on the wire names its team exactly: a set lookup, not findTeam's normalisation (every push pays this).
  if (!TEAM_NAMES.has(t.team)) return undefined;
  const team = t.team as Team;
  if (!isCount(t.gold) || !isCount(t.silver) || !isCount(t.bronze) || !isCount(t.version)) return undefined;
  if (t.updatedAt !== null && typeof t.updatedAt !== "number") return undefined;
  return { team, gold: t.gold as number, silver: t.silver as number, bronze: t.bronze as number, version: t.version as number, updatedAt: t.updatedAt as number | null };
}

/** A score from untrusted input, or undefined if it is not one. */
export function asScore(v: unknown): Score | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const s = v as Record<string, unknown>;
  if (!EVENT_NAMES.has(s.event) || !isCount(s.version)) return undefined;
  const event = s.event as Event;
  if (s.updatedAt !== null && typeof s.updatedAt !== "number") return undefined;
  let scores: Scores;
  try {
    scores = parseScores(s.scores);
  } catch {
    return undefined;
  }
  return { event, scores, version: s.version as number, updatedAt: s.updatedAt as number | null };
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

// Made once: a tablet records a key for every value it applies, and a fresh string each time was garbage in every push.
const TALLY_KEYS: Readonly<Record<Team, string>> = Object.fromEntries(TEAMS.map((t) => [t, `tally/${t}`])) as Record<Team, string>;
const SCORE_KEYS: Readonly<Record<Event, string>> = Object.fromEntries(EVENTS.map((e) => [e, `score/${e}`])) as Record<Event, string>;

/** Names one tally or score across nodes ("tally/Gaul", "score/Stone Curling"), e.g. to match an update with when a tablet held it. */
export function itemKey(v: Tally | Score): string {
  return "team" in v ? tallyKey(v.team) : scoreKey(v.event);
}

/** itemKey of a team's tally; a tablet's push path calls this (or scoreKey) for the kind it holds (tablet.ts, apply). */
export function tallyKey(team: Team): string {
  return TALLY_KEYS[team];
}

export function scoreKey(event: Event): string {
  return SCORE_KEYS[event];
}

/** True when two held values are the same update (what convergence checks compare). */
export function sameTally(a: Tally | undefined, b: Tally | undefined): boolean {
  return !!a && !!b && a.version === b.version && MEDALS.every((m) => a[m] === b[m]);
}

export function sameScore(a: Score | undefined, b: Score | undefined): boolean {
  if (!a || !b || a.version !== b.version) return false;
  return TEAMS.every((t) => a.scores[t] === b.scores[t]);
}
