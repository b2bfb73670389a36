/**
 * The container machine's definition for the Stately visualiser (stately.ai/viz, the editor's
 * "import"), with no runtime: the actors it names are never started here.
 */
import { Context } from "effect"
import type { Services } from "../effects/lifecycle.ts"
import { containerMachine } from "./container-machine.ts"
import type { MachineDefinition } from "./status.ts"

/** createMachine's config as JSON: states, transitions, tags, invoked actors by name (functions dropped). */
export function machineDefinition(): MachineDefinition {
  // An empty context: building the machine only records the actors' logic, nothing runs.
  const machine = containerMachine(Context.empty() as Context.Context<Services>)
  return JSON.parse(JSON.stringify(machine.config)) as MachineDefinition
}
