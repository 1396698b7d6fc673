import type { Event, Medal, Score, Scores, Tally, Team } from "./domain.ts";

/**
 * The olympics protocol. Requests carry names as sent (untrusted: obelix validates them); replies
 * and pushes carry canonical names and whole values, so a receiver never needs an earlier message
 * to make sense of a later one.
 */

export interface GetMedalTally {
  type: "get_medal_tally";
  team: string;
  [k: string]: unknown;
}
export interface MedalTallyOk {
  type: "get_medal_tally_ok";
  tally: Tally;
  [k: string]: unknown;
}

export interface GetScore {
  type: "get_score";
  event: string;
  [k: string]: unknown;
}
export interface ScoreOk {
  type: "get_score_ok";
  score: Score;
  [k: string]: unknown;
}

export interface IncrementMedalTally {
  type: "increment_medal_tally";
  team: string;
  medal: string;
  password: string;
  /** Optional: copies of a write with the same id are applied once (see WriteLog). */
  write_id?: string;
  [k: string]: unknown;
}
export interface IncrementMedalTallyOk {
  type: "increment_medal_tally_ok";
  tally: Tally;
  [k: string]: unknown;
}

export interface SetScore {
  type: "set_score";
  event: string;
  scores: Record<string, number>;
  password: string;
  write_id?: string;
  [k: string]: unknown;
}
export interface SetScoreOk {
  type: "set_score_ok";
  score: Score;
  [k: string]: unknown;
}

/** Replaces the tablet's interests (so registering again after a restart is harmless). */
export interface Register {
  type: "register";
  tablet: string;
  events: string[];
  teams: string[];
  [k: string]: unknown;
}
/** The current values of what was registered come back with the registration: a (re)registering tablet catches up at once. */
export interface RegisterOk {
  type: "register_ok";
  teams: Team[];
  events: Event[];
  invalid: { teams: string[]; events: string[] };
  /** Set when some names were invalid: says which, and lists the valid names. */
  error?: string;
  tallies: Tally[];
  scores: Score[];
  [k: string]: unknown;
}

/** obelix → push tablet, fire and forget: a lost one is healed by the tablet's next registration. */
export interface TallyUpdate {
  type: "tally_update";
  tally: Tally;
  [k: string]: unknown;
}
export interface ScoreUpdate {
  type: "score_update";
  score: Score;
  [k: string]: unknown;
}

/** Driver → cacofonix: stop writing and report what was written (for the scenario's checks). */
export interface CacofonixStop {
  type: "cacofonix_stop";
  [k: string]: unknown;
}
export interface CacofonixStopOk {
  type: "cacofonix_stop_ok";
  report: CacofonixReport;
  [k: string]: unknown;
}

export interface ObelixConfig {
  /** Writes need it; an obelix configured without one refuses every write. */
  password?: string;
  /** HTTP port; 0 picks a free one; absent: no HTTP. */
  port?: number;
  [k: string]: unknown;
}

export type CacofonixMode = "random" | "testing";

export interface CacofonixConfig {
  obelix: string;
  password: string;
  mode: CacofonixMode;
  /** testing: the period; random: the largest gap between two updates. */
  rateMs: number;
  [k: string]: unknown;
}

/**
 * What cacofonix wrote, counted from the standings it read at start. An acknowledged write surely
 * happened; an attempted one may have (a timeout is indefinite), so obelix's tally of a medal lies
 * between acked and attempted.
 */
export interface CacofonixReport {
  mode: CacofonixMode;
  running: boolean;
  /** True once it holds obelix's standings (read at the start of a run) and may write. */
  ready: boolean;
  /** Updates that came due and were started (in this run); 0 means none was due yet. */
  begun: number;
  updates: number;
  failed: number;
  attempted: Record<Team, Record<Medal, number>>;
  acked: Record<Team, Record<Medal, number>>;
  /** Score updates sent per event (every value cacofonix ever set is made of numbers it chose). */
  scoresSent: Partial<Record<Event, number>>;
  lastScores: Partial<Record<Event, Scores>>;
}

export type TabletMode = "push" | "pull";

/** One value a tablet started to hold: which item (itemKey), which version, and when (tablet's clock). */
export interface AppliedValue {
  key: string;
  version: number;
  at: number;
}

export interface TabletConfig {
  obelix: string;
  mode: TabletMode;
  teams: string[];
  events: string[];
  /** pull: the gap between polls. */
  pollMs: number;
  /** push: how often to register again, which heals pushes lost on the way. */
  refreshMs: number;
  [k: string]: unknown;
}

export interface TabletState {
  mode: TabletMode;
  teams: Team[];
  events: Event[];
  /** Invalid names obelix reported at registration (push), or refused on a poll (pull). */
  invalid: string[];
  registered: boolean;
  tallies: Partial<Record<Team, Tally>>;
  scores: Partial<Record<Event, Score>>;
  /** New values applied (what a line on screen is). */
  changes: number;
  pushes: number;
  /** Pushes about something this tablet never asked for: must stay 0. */
  unexpectedPushes: number;
  /** Pushes or replies that were older than what the tablet held. */
  stale: number;
  refused: number;
  polls: number;
  pollErrors: number;
  /** Per new value applied: tablet's clock at apply − obelix's clock at update (bounded sample). */
  propagationMs: number[];
  /** Versions skipped: updates this tablet never held because a newer one came first (pull mostly). */
  skipped: number;
  /** When each new value was applied, on the tablet's clock (bounded sample): matched against obelix's recentUpdates, it gives the delay of skipped versions too. */
  applied: AppliedValue[];
  /** pull: round trips of get_medal_tally / get_score (bounded sample). */
  requestMs: number[];
}
