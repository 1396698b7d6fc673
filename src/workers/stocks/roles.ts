import { catalog } from "./catalog.ts";
import { client } from "./client.ts";
import { frontend } from "./frontend.ts";
import { replica } from "./replica.ts";

export const roles = { frontend, catalog, replica, client };
