import { paxosClient } from "./client.ts";
import { paxosReplica } from "./replica.ts";

export const roles = { replica: paxosReplica, client: paxosClient };
