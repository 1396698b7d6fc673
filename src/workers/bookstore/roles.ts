import { catalog } from "./catalog.ts";
import { client } from "./client.ts";
import { frontend } from "./frontend.ts";
import { order } from "./orders.ts";

export const roles = { frontend, catalog, order, client };
