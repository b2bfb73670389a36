/**
 * A CRI client as kubelet is one: unary gRPC calls of runtime.v1 (api.proto, generated into api_pb.ts)
 * over HTTP/2 on containerd's unix socket. gRPC's wire format is small enough to speak with node:http2
 * directly: a POST to /<service>/<Method> with content-type application/grpc, the request as one
 * length-prefixed message, the reply the same, and the outcome in the grpc-status/grpc-message trailers.
 * This keeps the test suite to the dependencies it already has (@bufbuild/protobuf).
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf"
import type { DescMethod } from "@bufbuild/protobuf"
import * as http2 from "node:http2"
import * as net from "node:net"
import { Data } from "effect"

/** A call that did not end with grpc-status 0: the method, gRPC's status code and its message. */
export class CriError extends Data.TaggedError("CriError")<{
  readonly method: string
  readonly code: number
  readonly reason: string
}> {
  override get message() {
    return `${this.method}: grpc-status ${this.code}: ${this.reason}`
  }
}

/** A unary method of a generated service: its input and output message schemas. */
type Unary<I extends DescMessage, O extends DescMessage> = DescMethod & { methodKind: "unary"; input: I; output: O }

export interface CriClient {
  call<I extends DescMessage, O extends DescMessage>(
    method: Unary<I, O>,
    request: MessageInitShape<I>,
    timeoutMs?: number,
  ): Promise<MessageShape<O>>
  close(): void
}

/** gRPC's message framing: a compressed flag (0: never compressed here), a 4-byte big-endian length, the bytes. */
const frame = (bytes: Uint8Array): Buffer => {
  const head = Buffer.alloc(5)
  head.writeUInt32BE(bytes.length, 1)
  return Buffer.concat([head, bytes])
}

/** The one message of a unary reply (an empty body is a reply with no message, which only errors have). */
const unframe = (body: Buffer): Uint8Array | undefined => {
  if (body.length < 5) return undefined
  const length = body.readUInt32BE(1)
  return body.subarray(5, 5 + length)
}

export const connect = (socket: string): CriClient => {
  // The authority is nominal: the stream goes to the unix socket.
  const session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) })
  // An error on the session (containerd gone) fails the calls in flight through their streams.
  session.on("error", () => {})
  const call = <I extends DescMessage, O extends DescMessage>(
    method: Unary<I, O>,
    request: MessageInitShape<I>,
    timeoutMs = 60_000,
  ): Promise<MessageShape<O>> =>
    new Promise((resolve, reject) => {
      const name = `${method.parent.typeName}/${method.name}`
      const stream = session.request({
        ":method": "POST",
        ":path": `/${name}`,
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": `${timeoutMs}m`,
      })
      const chunks: Buffer[] = []
      let status: { code: number; reason: string } | undefined
      // A reply's status is in its trailers; a "trailers-only" error reply puts it in the headers.
      const readStatus = (h: http2.IncomingHttpHeaders) => {
        const code = h["grpc-status"]
        if (typeof code === "string") {
          const msg = h["grpc-message"]
          status = { code: Number(code), reason: typeof msg === "string" ? decodeURIComponent(msg) : "" }
        }
      }
      stream.on("response", readStatus)
      stream.on("trailers", readStatus)
      stream.on("data", (c: Buffer) => chunks.push(c))
      stream.setTimeout(timeoutMs + 5_000, () => stream.close(http2.constants.NGHTTP2_CANCEL))
      stream.on("error", (e: Error) => reject(new CriError({ method: name, code: 14, reason: e.message })))
      stream.on("close", () => {
        if (status === undefined) return reject(new CriError({ method: name, code: 2, reason: "stream closed without grpc-status" }))
        if (status.code !== 0) return reject(new CriError({ method: name, ...status }))
        const bytes = unframe(Buffer.concat(chunks))
        if (bytes === undefined) return reject(new CriError({ method: name, code: 13, reason: "no reply message" }))
        resolve(fromBinary(method.output, bytes))
      })
      stream.end(frame(toBinary(method.input, create(method.input, request))))
    })
  return { call, close: () => session.close() }
}
