import { cacofonix } from "./cacofonix.ts";
import { obelix } from "./obelix.ts";
import { tablet } from "./tablet.ts";
import { tieredRoles } from "./tiered-roles.ts";

export const roles = { obelix, cacofonix, tablet, ...tieredRoles };
