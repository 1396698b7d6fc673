import { cacofonix } from "./cacofonix.ts";
import { obelix } from "./obelix.ts";
import { tablet } from "./tablet.ts";

export const roles = { obelix, cacofonix, tablet };
