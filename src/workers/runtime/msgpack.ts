/**
 * msgpackr for the node runtime, without the native string extractor its Node entry loads at import
 * (msgpackr-extract, a native addon): that load costs about 2.4 MB in every worker thread (1.3 MB
 * for a bare one), and a thread-per-node cluster pays it per node, though only TCP frames gain from
 * it. The plain entry shares its modules with the Node one, so `withNativeExtractor()` — called
 * where a thread first opens a TCP wire — switches every Packr in the thread over to it.
 */
export { Packr, pack, unpack } from "msgpackr/pack";

let loading: Promise<unknown> | null = null;

/** Load msgpackr's Node entry (and with it the native extractor, when installed) once per thread. */
export function withNativeExtractor(): Promise<unknown> {
  loading ??= import("msgpackr").catch(() => null);
  return loading;
}
