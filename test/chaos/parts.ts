/** The battery's parts, by name, each run for a time budget. */
import type { Figures } from "./common.ts"
import { crashPart } from "./crash.ts"
import { statePart } from "./state.ts"
import { fdsPart } from "./fds.ts"
import { pidReusePart } from "./pid-reuse.ts"
import { hostilePart } from "./hostile.ts"
import { fuzzPart } from "./fuzz.ts"
import { loadPart } from "./load.ts"

export interface PartOptions {
  readonly budgetMs: number
  /** The long run (npm run chaos) rather than CI's short one. */
  readonly soak: boolean
  /** fast-check's seed for the hostile part (to replay a run). */
  readonly seed?: number
  readonly log?: (line: string) => void
}

export const PARTS = {
  crash: (o: PartOptions): Promise<Figures> => crashPart({ budgetMs: o.budgetMs, ...(o.log ? { log: o.log } : {}) }),
  state: (o: PartOptions): Promise<Figures> => statePart(o),
  fds: (o: PartOptions): Promise<Figures> => fdsPart(o),
  pids: (o: PartOptions): Promise<Figures> => pidReusePart(o),
  hostile: (o: PartOptions): Promise<Figures> => hostilePart(o),
  fuzz: (o: PartOptions): Promise<Figures> => fuzzPart(o),
  // The soak's 200 + 50; CI's short run keeps it small (the machine is shared).
  load: (o: PartOptions): Promise<Figures> => loadPart({ containers: o.soak ? 200 : 20, execs: o.soak ? 50 : 10, budgetMs: Math.max(o.budgetMs, 120_000) }),
}
export type PartName = keyof typeof PARTS
