import { echoClient } from "./client.ts";
import { echoServer } from "./server.ts";

export const roles = { server: echoServer, client: echoClient };
