/**
 * One conversation with CRIU's RPC service in "swrk" mode (what runc's criuSwrk
 * does): CRIU runs as our child with its end of a SOCK_SEQPACKET socketpair as
 * fd 3, one protobuf message per datagram (CRIU's images/rpc.proto, generated
 * into native/criu/rpc_pb.ts by `npm run gen:criu`).
 *
 *   xcontainer                                  criu swrk 3
 *   ── spawn, then `beforeRequest(criu pid)` (restore: criu joins the container's cgroups)
 *   ── criu_req{DUMP|RESTORE|VERSION, opts} ──►
 *   ◄─ criu_resp{NOTIFY, notify{script, pid}}      pre-dump, post-dump, network-lock,
 *   ── criu_req{NOTIFY, notify_success} ──►         setup-namespaces, post-restore, …
 *      … (as many notifications as CRIU has)
 *   ◄─ criu_resp{DUMP|RESTORE|VERSION, success, cr_errno, cr_errmsg}
 *   ── close; criu exits (we reap it)
 *
 * A failing notification handler closes the socket instead of answering: CRIU
 * then aborts (and, on dump, thaws the tree) rather than going on.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf"
import { Effect, Queue } from "effect"
import { addon } from "../native/addon.ts"
import { criu_req_type, criu_reqSchema, criu_respSchema, type criu_resp } from "../native/criu/rpc_pb.ts"
import { CriuFailed, type ContainerError } from "./errors.ts"
import { errnoName, toSyscallError } from "./kernel-live.ts"

/** A notification CRIU sends while it works (`script` is its name, as for --action-script). */
export interface CriuNotification {
  readonly script: string
  readonly pid: number
  /** Fds that came with it (orphan-pts-master's terminal master); the handler owns them. */
  readonly fds: readonly number[]
}

export interface SwrkRequest {
  readonly criuPath: string
  /** The request, or a function of CRIU's pid computed once beforeRequest ran. */
  readonly request: MessageInitShape<typeof criu_reqSchema> | ((criuPid: number) => MessageInitShape<typeof criu_reqSchema>)
  /** The action named in errors ("dump", "restore"). */
  readonly action: string
  /** CRIU's stdio (the restored tree inherits none of it unless asked, but a shell job uses its terminal). */
  readonly stdio?: readonly [number | "ignore", number | "ignore", number | "ignore"]
  readonly beforeRequest?: (criuPid: number) => Effect.Effect<void, ContainerError>
  readonly onNotify?: (n: CriuNotification) => Effect.Effect<void, ContainerError>
}

type Incoming = { readonly kind: "msg"; readonly data: Buffer; readonly fds: number[] } | { readonly kind: "end"; readonly error: Error | null }

const closeQuietly = (fd: number) => {
  try {
    fs.closeSync(fd)
  } catch {
    /* already closed */
  }
}

/** Runs one request through `criu swrk` and returns CRIU's final answer (success checked). */
export const swrk = (r: SwrkRequest): Effect.Effect<criu_resp, ContainerError> =>
  Effect.gen(function* () {
    const [mine, theirs] = yield* Effect.try({ try: () => addon.socketpair(), catch: toSyscallError("socketpair") })
    const inbox = yield* Queue.unbounded<Incoming>()
    const watch = addon.receive(
      mine,
      (data, fds) => Queue.unsafeOffer(inbox, { kind: "msg", data, fds }),
      (error) => Queue.unsafeOffer(inbox, { kind: "end", error }),
    )
    // The fd number handed to CRIU is its 3 (libuv dup2's it there and drops CLOEXEC on the copy).
    const child = spawn(r.criuPath, ["swrk", "3"], { stdio: [...(r.stdio ?? ["ignore", "ignore", "ignore"]), theirs] })
    closeQuietly(theirs)
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    )
    // A failed spawn reports through "error" (and "exit" never comes): race the two.
    const spawned = yield* Effect.promise(
      () => new Promise<Error | undefined>((resolve) => {
        child.once("spawn", () => resolve(undefined))
        child.once("error", (e) => resolve(e))
      }),
    )
    const finish = Effect.promise(async () => {
      watch.close()
      closeQuietly(mine)
      if (!spawned) await exited
    })
    if (spawned) {
      yield* finish
      return yield* new CriuFailed({ action: r.action, reason: `spawn ${r.criuPath}: ${(spawned as NodeJS.ErrnoException).code ?? spawned.message}` })
    }
    const conversation = Effect.gen(function* () {
      if (r.beforeRequest) yield* r.beforeRequest(child.pid!)
      const send = (msg: MessageInitShape<typeof criu_reqSchema>) =>
        Effect.try({ try: () => addon.send(mine, toBinary(criu_reqSchema, create(criu_reqSchema, msg))), catch: toSyscallError("send", "criu swrk") })
      yield* send(typeof r.request === "function" ? r.request(child.pid!) : r.request)
      for (;;) {
        const item = yield* Queue.take(inbox)
        if (item.kind === "end") {
          const st = yield* Effect.promise(() => exited)
          return yield* new CriuFailed({
            action: r.action,
            reason: `criu exited without an answer (${st.signal ? `signal ${st.signal}` : `code ${st.code}`}${item.error ? `, ${item.error.message}` : ""})`,
          })
        }
        const resp = yield* Effect.try({
          try: () => fromBinary(criu_respSchema, item.data),
          catch: (e) => new CriuFailed({ action: r.action, reason: `undecodable answer: ${String(e)}` }),
        })
        if (!resp.success) {
          item.fds.forEach(closeQuietly)
          const errno = resp.crErrno ? `: ${errnoName(resp.crErrno)}` : ""
          return yield* new CriuFailed({ action: r.action, reason: `${criu_req_type[resp.type] ?? resp.type} failed${errno}${resp.crErrmsg ? ` (${resp.crErrmsg})` : ""}` })
        }
        if (resp.type !== criu_req_type.NOTIFY) {
          item.fds.forEach(closeQuietly)
          return resp
        }
        const notify = { script: resp.notify?.script ?? "", pid: resp.notify?.pid ?? 0, fds: item.fds }
        yield* Effect.logDebug("criu notify", { script: notify.script, pid: notify.pid })
        if (r.onNotify) yield* r.onNotify(notify)
        else item.fds.forEach(closeQuietly)
        yield* send({ type: criu_req_type.NOTIFY, notifySuccess: true })
      }
    })
    // Closing our end whatever happened: CRIU sees EOF, finishes or aborts, and exits; we reap it.
    return yield* conversation.pipe(Effect.ensuring(finish))
  })
