/**
 * One stage of the push-pull benchmark, in its own process: measure one configuration and print one
 * JSON line { row, slowSteps }. A stage of 500 threads leaves the process in a state no later stage
 * should share (threads still exiting, memory), and a stage that hangs can be killed by the parent
 * and reported while every other stage still runs.
 * Args: <config JSON> <windowMs> <dataDir> for push or pull; <floor config JSON> for a floor (FloorConfig: raw, the role's or a node's;
 * PackedFloorConfig: packed threads').
 */
import { floorWorkerUrl, measure, rawFanOut, slowSteps, type Config, type FloorConfig, type PackedFloorConfig } from "../push-pull.ts";
import { packedFloor } from "./packed-floor.ts";

const [configArg, windowArg, dataDir] = process.argv.slice(2);
const config = JSON.parse(configArg!) as Config | FloorConfig | PackedFloorConfig;
const row =
  "packedFloor" in config
    ? await packedFloor(config)
    : "floor" in config
      ? await rawFanOut(config.tablets, config.updates, config.warm, floorWorkerUrl(config.worker))
      : await measure(config, Number(windowArg), dataDir!);
console.log(JSON.stringify({ row, slowSteps }));
// The cluster has stopped; threads still winding down must not hold the answer back.
process.exit(0);
