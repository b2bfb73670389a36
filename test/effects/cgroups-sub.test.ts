/** runc's `exec --cgroup` arguments (exec.go getSubCgroupPaths) and the path rule (no `..`). */
import { describe, expect, it } from "vitest"
import { checkSubCgroups, parseSubCgroupArgs } from "../../effects/cgroups-sub.ts"
import { ConfigError } from "../../effects/errors.ts"

const reason = (r: unknown) => (r instanceof ConfigError ? r.reason : "")

describe("exec --cgroup arguments", () => {
  it("maps controllers to paths, a bare path to every hierarchy, '/x' as 'x'", () => {
    expect(parseSubCgroupArgs(["memory,pids:sub"])).toEqual({ memory: "sub", pids: "sub" })
    expect(parseSubCgroupArgs(["memory:a/b", "cpu:/c/"])).toEqual({ memory: "a/b", cpu: "c" })
    expect(parseSubCgroupArgs(["sub"])).toEqual({ "": "sub" })
    expect(parseSubCgroupArgs(["a/./b"])).toEqual({ "": "a/b" })
  })

  it("refuses in runc's words: an empty controller, a controller twice, a bare path among others", () => {
    expect(reason(parseSubCgroupArgs([":sub"]))).toBe("invalid --cgroup argument: :sub (empty <controller> prefix)")
    expect(reason(parseSubCgroupArgs(["memory:a", "memory,pids:b"]))).toBe("invalid --cgroup argument(s): controller memory specified multiple times")
    expect(reason(parseSubCgroupArgs(["memory:a", "b"]))).toBe("invalid --cgroup argument: b (missing <controller>: prefix)")
  })

  it("refuses '..' in any position and NUL bytes, for the CLI and the library alike", () => {
    for (const p of ["..", "../x", "a/../../x", "a/.."]) expect(reason(parseSubCgroupArgs([`memory:${p}`]))).toMatch(/"\.\." is not allowed/)
    expect(reason(checkSubCgroups("subCgroups", { "": "a\0b" }))).toMatch(/NUL/)
    expect(reason(checkSubCgroups("subCgroups", { "mem ory": "a" }))).toMatch(/not a controller name/)
  })
})
