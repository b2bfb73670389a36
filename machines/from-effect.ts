/**
 * The one bridge from XState to Effect: an actor logic that runs an Effect on
 * the given runtime. Leaving the invoking state aborts the signal, which
 * interrupts the fiber; a failure rejects with the tagged error itself
 * (Cause.squash), so `onError` receives e.g. an InitFailed.
 */
import { Cause, type Context, Effect, Exit } from "effect"
import { fromPromise } from "xstate"

export const fromEffect = <I, A, E, R>(rt: Context.Context<R>, make: (input: I) => Effect.Effect<A, E, R>) =>
  fromPromise<A, I>(async ({ input, signal }) => {
    const exit = await Effect.runPromiseExitWith(rt)(make(input), { signal })
    if (Exit.isSuccess(exit)) return exit.value
    throw Cause.squash(exit.cause)
  })
