import type { Storage } from "../runtime/types.ts";
import { EVENTS, TEAMS, asScore, asTally, emptyScore, emptyTally, incremented, withScores, type Event, type Medal, type Score, type Scores, type Tally, type Team } from "./domain.ts";

const TALLY = "tally/";
const SCORE = "score/";

/**
 * obelix's durable scoreboard: every tally and score, cached in memory and written through to the
 * node's storage. Each update is one synchronous read-modify-write, so updates never interleave;
 * the cache changes only after the commit, and a commit is durable when it returns, so an
 * acknowledged update survives a restart.
 */
export class Board {
  private readonly tallies = new Map<Team, Tally>();
  private readonly scores = new Map<Event, Score>();

  constructor(private readonly storage: Storage) {
    for (const team of TEAMS) this.tallies.set(team, asTally(storage.get(TALLY + team)) ?? emptyTally(team));
    for (const event of EVENTS) this.scores.set(event, asScore(storage.get(SCORE + event)) ?? emptyScore(event));
  }

  tally(team: Team): Tally {
    return this.tallies.get(team)!;
  }

  score(event: Event): Score {
    return this.scores.get(event)!;
  }

  /** `alsoDurably` runs in the same storage transaction (e.g. to record the write's id): both land or neither. */
  increment(team: Team, medal: Medal, now: number, alsoDurably?: (next: Tally) => void): Tally {
    const next = incremented(this.tally(team), medal, now);
    this.storage.transaction(() => {
      this.storage.put(TALLY + team, next);
      alsoDurably?.(next);
    });
    this.tallies.set(team, next);
    return next;
  }

  setScores(event: Event, scores: Scores, now: number, alsoDurably?: (next: Score) => void): Score {
    const next = withScores(this.score(event), scores, now);
    this.storage.transaction(() => {
      this.storage.put(SCORE + event, next);
      alsoDurably?.(next);
    });
    this.scores.set(event, next);
    return next;
  }

  snapshot(): { tallies: Tally[]; scores: Score[] } {
    return { tallies: [...this.tallies.values()], scores: [...this.scores.values()] };
  }
}
