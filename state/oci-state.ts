/**
 * The OCI runtime-spec state of a container, built from its record and reconciled status. Plain, no
 * Effect: Container.state() and the command line's lean path (cli/lean-entry.ts) both build it here.
 */

/** The runtime-spec version the state reports. */
export const OCI_VERSION = "1.2.0"

/** The OCI runtime-spec state of a container. */
export interface OciState {
  readonly ociVersion: string
  readonly id: string
  readonly status: "creating" | "created" | "running" | "paused" | "stopped"
  readonly pid?: number
  readonly bundle: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** The pid only while the container lives; the bundle and annotations from the record (when there is one). */
export function ociState(
  id: string,
  status: OciState["status"],
  pid: number | undefined,
  record: { readonly bundle: string; readonly spec: { readonly annotations?: Readonly<Record<string, string>> | undefined } } | undefined,
): OciState {
  return {
    ociVersion: OCI_VERSION,
    id,
    status,
    ...(pid !== undefined && status !== "stopped" ? { pid } : {}),
    bundle: record?.bundle ?? "",
    ...(record?.spec.annotations ? { annotations: record.spec.annotations } : {}),
  }
}
