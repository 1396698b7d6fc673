import type { Scenario } from "../driver/scenario.ts";
import type { Role } from "./runtime/types.ts";

/**
 * Every system menhir ships, by name. Roles are loaded inside nodes; scenarios by the driver.
 * Adding a system: a folder with `roles.ts` (export const roles) and `scenario.ts` (export const scenario), and a line here.
 */
export const SYSTEMS = {
  echo: {
    roles: () => import("./echo/roles.ts"),
    scenario: () => import("./echo/scenario.ts"),
  },
  paxos: { roles: () => import("./paxos/roles.ts"), scenario: () => import("./paxos/scenario.ts") },
  olympics: { roles: () => import("./olympics/roles.ts"), scenario: () => import("./olympics/scenario.ts") },
  stocks: { roles: () => import("./stocks/roles.ts"), scenario: () => import("./stocks/scenario.ts") },
  bookstore: { roles: () => import("./bookstore/roles.ts"), scenario: () => import("./bookstore/scenario.ts") },
} satisfies Record<string, { roles: () => Promise<{ roles: Record<string, Role> }>; scenario: () => Promise<{ scenario: Scenario<any> }> }>;

export type SystemName = keyof typeof SYSTEMS;

export const DEFAULT_SYSTEM: SystemName = "stocks";

export function isSystemName(s: string): s is SystemName {
  return Object.hasOwn(SYSTEMS, s);
}

/**
 * The module a node's worker imports its roles from: a shipped system's `roles.ts`, or the given
 * path or file URL. The supervisor resolves it so the worker host needs no registry.
 */
export function rolesModule(system: string): string {
  if (/[/\\]|\.[cm]?[jt]s$/.test(system)) return system;
  if (!isSystemName(system)) throw new Error(`unknown system "${system}" (known: ${Object.keys(SYSTEMS).join(", ")})`);
  return new URL(`./${system}/roles.ts`, import.meta.url).href;
}

/** Roles of a shipped system by name, or of any module that exports `roles` (a path or file URL: your own nodes, test fixtures). */
export async function loadRoles(system: string): Promise<Record<string, Role>> {
  if (/[/\\]|\.[cm]?[jt]s$/.test(system)) {
    const mod = (await import(system)) as { roles?: Record<string, Role> };
    if (!mod.roles) throw new Error(`module ${system} exports no \`roles\``);
    return mod.roles;
  }
  if (!isSystemName(system)) throw new Error(`unknown system "${system}" (known: ${Object.keys(SYSTEMS).join(", ")})`);
  return (await SYSTEMS[system].roles()).roles;
}

export async function loadScenario(system: string): Promise<Scenario<any>> {
  if (!isSystemName(system)) throw new Error(`unknown system "${system}" (known: ${Object.keys(SYSTEMS).join(", ")})`);
  return (await SYSTEMS[system].scenario()).scenario;
}
