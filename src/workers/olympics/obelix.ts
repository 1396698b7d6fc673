import { DRIVER_ID, ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
import { MAX_HTTP_BODY_BYTES, olympicsHttp } from "./http.ts";
import type {
  GetMedalTally,
  GetScore,
  IncrementMedalTally,
  MedalTallyOk,
  ObelixConfig,
  Register,
  ScoreOk,
  SetScore,
  SetScoreOk,
  IncrementMedalTallyOk,
} from "./messages.ts";
import { Scorekeeper } from "./scorekeeper.ts";

/** The score server: holds every tally and score, takes writes from Cacofonix, answers tablets and pushes to registered ones. */
export const obelix = defineRole<ObelixConfig>((node) => {
  const password = typeof node.config.password === "string" ? node.config.password : undefined;
  if (!password) node.log.warn("no password configured: every write will be refused");
  const keeper = new Scorekeeper(node, password);

  node.on<GetMedalTally>("get_medal_tally", (msg) => {
    node.reply(msg, { type: "get_medal_tally_ok", tally: keeper.getMedalTally(msg.body.team) } satisfies MedalTallyOk);
  });
  node.on<GetScore>("get_score", (msg) => {
    node.reply(msg, { type: "get_score_ok", score: keeper.getScore(msg.body.event) } satisfies ScoreOk);
  });
  node.on<IncrementMedalTally>("increment_medal_tally", (msg) => {
    const tally = keeper.incrementMedalTally(msg.body.team, msg.body.medal, msg.body.password, msg.body.write_id);
    node.reply(msg, { type: "increment_medal_tally_ok", tally } satisfies IncrementMedalTallyOk);
  });
  node.on<SetScore>("set_score", (msg) => {
    const score = keeper.setScore(msg.body.event, msg.body.scores, msg.body.password, msg.body.write_id);
    node.reply(msg, { type: "set_score_ok", score } satisfies SetScoreOk);
  });
  node.on<Register>("register", (msg) => {
    // A node registers itself only: otherwise any node could have obelix push at a third one.
    if (msg.src !== DRIVER_ID && msg.body.tablet !== msg.src) throw new RpcError(ErrorCode.Unauthorized, `${msg.src} may register itself only, not ${JSON.stringify(msg.body.tablet)?.slice(0, 100)}`);
    const ok = keeper.register(msg.body.tablet, msg.body.events, msg.body.teams);
    if (ok.error) node.log.info(`${String(msg.body.tablet)}: ${ok.error}`);
    node.reply(msg, ok);
  });

  const port = node.config.port;
  if (port !== undefined) {
    if (typeof port === "number" && Number.isInteger(port) && port >= 0 && port <= 65535) {
      node.serveHttp(olympicsHttp(keeper), { port, maxBodyBytes: MAX_HTTP_BODY_BYTES });
      node.log.info(`serving HTTP on ${port === 0 ? "a free port" : `port ${port}`}: GET /getMedalTally/:team, GET /getScore/:event, POST /incrementMedalTally/:team/:medal, POST /setScore/:event`);
    } else {
      node.log.error(`bad HTTP port ${JSON.stringify(port)}: serving no HTTP`);
    }
  }

  return {
    inspect: () => ({ ...keeper.board.snapshot(), subscriptions: keeper.subscriptions.all(), stats: keeper.stats }),
  };
});
