import { cacofonix } from "./cacofonix.ts";
import { db } from "./db.ts";
import { dispatcher } from "./dispatcher.ts";
import { frontend } from "./frontend.ts";
import { viaDispatcher } from "./router.ts";
import { tablet } from "./tablet.ts";

/** The tiered topology's roles: its servers, and the single-server clients behind a router. */
export const tieredRoles = {
  dispatcher,
  frontend,
  db,
  "tiered-tablet": viaDispatcher(tablet),
  "tiered-cacofonix": viaDispatcher(cacofonix),
};
