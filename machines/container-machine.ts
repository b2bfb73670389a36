/**
 * A container's lifecycle as an XState v5 machine. The transition table is
 * runc's (libcontainer/state_linux.go):
 *
 *   creating ─► created ─START─► starting ─► running ⇄ paused   (PAUSE via pausing, RESUME via resuming)
 *       │          │                            │
 *       ▼          └────────── init exits ──────┴──► stopped ─DESTROY─► destroying ─► destroyed
 *    failed        (DESTROY from created; DESTROY{force} from running/paused)
 *
 * plus CRIU's: running|paused ─CHECKPOINT─► checkpointing ─► checkpointed (─DESTROY─► destroying),
 * or back to where it was (leaveRunning, or CRIU failed and let the tree go); a
 * restore boots a new machine in restoring ─► running. Each busy state invokes one lifecycle Effect; a state that has
 * no transition for an event forbids it (the facade turns that into
 * InvalidTransition before anything is touched).
 */
import type { Context } from "effect"
import { assign, or, setup, stateIn } from "xstate"
import * as lifecycle from "../effects/lifecycle.ts"
import type { ContainerError } from "../effects/errors.ts"
import type { ExitStatus } from "../effects/kernel.ts"
import { Kernel } from "../effects/kernel.ts"
import { Effect } from "effect"
import { fromEffect } from "./from-effect.ts"
import * as criu from "../effects/checkpoint.ts"

export type { Status } from "./status.ts"
export { statusOf } from "./status.ts"

export type ContainerEvent =
  | { readonly type: "START" }
  | { readonly type: "DESTROY"; readonly force: boolean }
  | { readonly type: "SIGNAL"; readonly signal: number }
  | { readonly type: "UPDATED"; readonly live: lifecycle.Live }
  | { readonly type: "EXEC"; readonly pid: number }
  | { readonly type: "PAUSE" }
  | { readonly type: "RESUME" }
  | { readonly type: "CHECKPOINT"; readonly options: criu.CheckpointOptions }
  /** The kernel's OOM killer acted in the container's memory cgroup (`count` times since the last). */
  | { readonly type: "OOM"; readonly count: number }

export type MachineInput =
  | { readonly mode: "create"; readonly root: string; readonly options: lifecycle.CreateOptions }
  | { readonly mode: "load"; readonly root: string; readonly id: string }
  | { readonly mode: "restore"; readonly root: string; readonly options: criu.RestoreOptions }

export interface ContainerContext {
  readonly root: string
  readonly input: MachineInput
  readonly live: lifecycle.Live | undefined
  readonly exit: ExitStatus | null | undefined
  readonly error: ContainerError | undefined
  readonly lastSignal: number | undefined
  /** Pids of the processes exec'd into the container. */
  readonly execs: readonly number[]
  /** OOM kills seen while someone watched (Container.onOom). */
  readonly oomKills: number
}

const toError = (e: unknown) => e as ContainerError

export const containerMachine = (rt: Context.Context<lifecycle.Services>) =>
  setup({
    types: {
      context: {} as ContainerContext,
      input: {} as MachineInput,
      events: {} as ContainerEvent,
    },
    actors: {
      create: fromEffect(rt, (o: lifecycle.CreateOptions) => lifecycle.create(o)),
      load: fromEffect(rt, (i: { root: string; id: string }) => lifecycle.reconcile(i.root, i.id)),
      start: fromEffect(rt, (i: { root: string; live: lifecycle.Live }) => lifecycle.start(i.root, i.live)),
      destroy: fromEffect(rt, (i: { root: string; live: lifecycle.Live }) => lifecycle.destroy(i.root, i.live)),
      pause: fromEffect(rt, (i: { root: string; live: lifecycle.Live }) => lifecycle.setPaused(i.root, i.live, true)),
      resume: fromEffect(rt, (i: { root: string; live: lifecycle.Live }) => lifecycle.setPaused(i.root, i.live, false)),
      checkpoint: fromEffect(rt, (i: { root: string; live: lifecycle.Live; options: criu.CheckpointOptions }) => criu.checkpoint(i.root, i.live, i.options)),
      restore: fromEffect(rt, (o: criu.RestoreOptions) => criu.restore(o)),
      watchInit: fromEffect(rt, (live: lifecycle.Live | undefined) =>
        live?.init ? Effect.flatMap(Kernel, (k) => k.awaitExit(live.init!)) : Effect.never,
      ),
    },
    guards: {
      forced: ({ event }) => event.type === "DESTROY" && event.force,
    },
  }).createMachine({
    id: "container",
    context: ({ input }) => ({ root: input.root, input, live: undefined, exit: undefined, error: undefined, lastSignal: undefined, execs: [], oomKills: 0 }),
    initial: "boot",
    // Reported in any state: the last kill is drained once the init is seen to exit.
    on: { OOM: { actions: assign({ oomKills: ({ context, event }) => context.oomKills + event.count }) } },
    states: {
      boot: {
        always: [
          { guard: ({ context }) => context.input.mode === "create", target: "creating" },
          { guard: ({ context }) => context.input.mode === "restore", target: "restoring" },
          { target: "loading" },
        ],
      },
      creating: {
        tags: ["busy"],
        invoke: {
          src: "create",
          input: ({ context }) => (context.input.mode === "create" ? context.input.options : ({} as lifecycle.CreateOptions)),
          onDone: { target: "alive.created", actions: assign({ live: ({ event }) => event.output }) },
          onError: { target: "failed", actions: assign({ error: ({ event }) => toError(event.error) }) },
        },
      },
      loading: {
        tags: ["busy"],
        invoke: {
          src: "load",
          input: ({ context }) => ({ root: context.root, id: context.input.mode === "load" ? context.input.id : "" }),
          onDone: [
            { guard: ({ event }) => event.output.status === "created", target: "alive.created", actions: assign({ live: ({ event }) => event.output }) },
            { guard: ({ event }) => event.output.status === "running", target: "alive.running", actions: assign({ live: ({ event }) => event.output }) },
            { guard: ({ event }) => event.output.status === "paused", target: "alive.paused", actions: assign({ live: ({ event }) => event.output }) },
            // Dumped by CRIU and killed (the record says so): checkpointed, not merely stopped.
            { guard: ({ event }) => event.output.record.status === "stopped" && event.output.record.checkpoint !== undefined, target: "checkpointed", actions: assign({ live: ({ event }) => event.output }) },
            { target: "stopped", actions: assign({ live: ({ event }) => event.output }) },
          ],
          onError: { target: "failed", actions: assign({ error: ({ event }) => toError(event.error) }) },
        },
      },
      alive: {
        invoke: {
          src: "watchInit",
          input: ({ context }) => context.live,
          onDone: [
            // While starting, the start effect still has to report why the init died (a failed execve):
            // note the exit and let `running` move on once the start settled.
            { guard: stateIn({ alive: "starting" }), actions: assign({ exit: ({ event }) => event.output }) },
            { target: "stopped", actions: assign({ exit: ({ event }) => event.output }) },
          ],
        },
        // Signals change no state; the machine only says whether they are allowed, and remembers the last.
        on: {
          SIGNAL: { actions: assign({ lastSignal: ({ event }) => event.signal }) },
          // An update changed the record (resources): keep the machine's copy current.
          UPDATED: { actions: assign({ live: ({ event }) => event.live }) },
          // runc's rule: a created or running container takes new processes, a paused one does not.
          EXEC: {
            guard: or([stateIn({ alive: "created" }), stateIn({ alive: "running" })]),
            actions: assign({ execs: ({ context, event }) => [...context.execs, event.pid] }),
          },
        },
        initial: "created",
        states: {
          created: {
            on: { START: "starting", DESTROY: "#container.destroying" },
          },
          starting: {
            tags: ["busy"],
            entry: assign({ error: undefined }),
            invoke: {
              src: "start",
              input: ({ context }) => ({ root: context.root, live: context.live! }),
              onDone: { target: "running", actions: assign({ live: ({ event }) => event.output }) },
              // A failed exec ends the init: the watcher takes the machine to stopped.
              onError: { target: "running", actions: assign({ error: ({ event }) => toError(event.error) }) },
            },
          },
          running: {
            always: { guard: ({ context }) => context.exit !== undefined, target: "#container.stopped" },
            on: { DESTROY: { guard: "forced", target: "#container.destroying" }, PAUSE: "pausing", CHECKPOINT: "#container.checkpointing" },
          },
          // The init may exit meanwhile: alive's watcher then takes the machine to stopped, interrupting these.
          pausing: {
            tags: ["busy"],
            entry: assign({ error: undefined }),
            invoke: {
              src: "pause",
              input: ({ context }) => ({ root: context.root, live: context.live! }),
              onDone: { target: "paused", actions: assign({ live: ({ event }) => event.output }) },
              onError: { target: "running", actions: assign({ error: ({ event }) => toError(event.error) }) },
            },
          },
          paused: {
            on: { DESTROY: { guard: "forced", target: "#container.destroying" }, RESUME: "resuming", CHECKPOINT: "#container.checkpointing" },
          },
          resuming: {
            tags: ["busy"],
            entry: assign({ error: undefined }),
            invoke: {
              src: "resume",
              input: ({ context }) => ({ root: context.root, live: context.live! }),
              onDone: { target: "running", actions: assign({ live: ({ event }) => event.output }) },
              onError: { target: "paused", actions: assign({ error: ({ event }) => toError(event.error) }) },
            },
          },
        },
      },
      stopped: {
        on: { DESTROY: "destroying" },
      },
      // Outside `alive`: CRIU kills the tree once it is dumped, and that exit is not the container stopping.
      checkpointing: {
        tags: ["busy"],
        entry: assign({ error: undefined }),
        invoke: {
          src: "checkpoint",
          input: ({ context, event }) => ({ root: context.root, live: context.live!, options: (event as Extract<ContainerEvent, { type: "CHECKPOINT" }>).options }),
          // The recorded status says where a container that goes on came from (paused stays paused).
          onDone: [
            { guard: ({ event }) => event.output.init === undefined, target: "checkpointed", actions: assign({ live: ({ event }) => event.output }) },
            { guard: ({ event }) => event.output.record.status === "paused", target: "alive.paused", actions: assign({ live: ({ event }) => event.output }) },
            { target: "alive.running", actions: assign({ live: ({ event }) => event.output }) },
          ],
          // CRIU gives the tree back as it found it when a dump fails; if the init died meanwhile, alive's watcher says so.
          onError: [
            { guard: ({ context }) => context.live?.record.status === "paused", target: "alive.paused", actions: assign({ error: ({ event }) => toError(event.error) }) },
            { target: "alive.running", actions: assign({ error: ({ event }) => toError(event.error) }) },
          ],
        },
      },
      checkpointed: {
        on: { DESTROY: "destroying" },
      },
      restoring: {
        tags: ["busy"],
        invoke: {
          src: "restore",
          input: ({ context }) => (context.input.mode === "restore" ? context.input.options : ({} as criu.RestoreOptions)),
          onDone: { target: "alive.running", actions: assign({ live: ({ event }) => event.output }) },
          onError: { target: "failed", actions: assign({ error: ({ event }) => toError(event.error) }) },
        },
      },
      destroying: {
        tags: ["busy"],
        entry: assign({ error: undefined }),
        invoke: {
          src: "destroy",
          input: ({ context }) => ({ root: context.root, live: context.live! }),
          onDone: { target: "destroyed" },
          onError: { target: "stopped", actions: assign({ error: ({ event }) => toError(event.error) }) },
        },
      },
      destroyed: { type: "final" },
      failed: { type: "final" },
    },
  })

export type ContainerMachine = ReturnType<typeof containerMachine>
