/**
 * The scenarios of the conformance suite, in groups: one QEMU (and one `QmpTestServer`) serves a
 * whole group, one connection per scenario, so that a scenario sees what the ones before it left
 * (block nodes, jobs, the run state) and names its nodes and jobs afresh. A group that ends QEMU
 * (`quit`) ends with that scenario.
 *
 * Commands are written as `qemu.qmp` writes them: compact JSON, no newline.
 */
import type { Received, Step } from "./transcript.js"

export interface Scenario {
  readonly name: string
  readonly steps: ReadonlyArray<Step>
  /** Negotiate first (`qmp_capabilities`, its reply part of the transcript): true by default. */
  readonly negotiate?: boolean | undefined
  /** Events that QEMU sends in its own time: their position among the replies is not compared. */
  readonly asynchronous?: ((event: any) => boolean) | undefined
}

export interface Group {
  readonly name: string
  readonly scenarios: ReadonlyArray<Scenario>
  /** A pretty monitor (`-mon chardev=...,mode=control,pretty=on`; `QmpTestServer`'s `pretty` option). */
  readonly pretty?: boolean | undefined
}

const json = (value: unknown): string => JSON.stringify(value)

/** A command, as compact JSON without a newline; one reply. */
export const cmd = (execute: string, args?: Record<string, unknown>, extra?: Record<string, unknown>): Step => ({
  _tag: "Send",
  data: json({ execute, ...(args === undefined ? {} : { arguments: args }), ...extra }),
  replies: 1
})

/** Bytes as they are, and the number of replies they get. */
export const raw = (data: string | Uint8Array, replies: number, cuts?: ReadonlyArray<number>): Step => ({
  _tag: "Send",
  data,
  replies,
  cuts
})

/** Waits for an event of this name whose data has these fields. */
export const awaitEvent = (event: string, data: Record<string, unknown> = {}): Step => ({
  _tag: "Await",
  what: `${event} ${json(data)}`,
  matches: (message: Received) =>
    message.json?.event === event && Object.entries(data).every(([key, value]) => message.json.data?.[key] === value)
})

/** Waits for the reply with this id. */
export const awaitReply = (id: unknown): Step => ({
  _tag: "Await",
  what: `the reply with id ${JSON.stringify(id)}`,
  matches: (message: Received) =>
    message.json !== null && typeof message.json === "object" && message.json.id === id &&
    (Object.hasOwn(message.json, "return") || Object.hasOwn(message.json, "error"))
})

export const end: Step = { _tag: "End" }

const MiB = 1024 * 1024
const GiB = 1024 * MiB

const nullNode = (name: string, size = GiB) => cmd("blockdev-add", { driver: "null-co", "node-name": name, size })

const backup = (id: string, device: string, target: string, extra: Record<string, unknown> = {}) =>
  cmd("blockdev-backup", { "job-id": id, device, target, sync: "full", ...extra })

const status = (id: string, value: string) => awaitEvent("JOB_STATUS_CHANGE", { id, status: value })

// -----------------------------------------------------------------------------
// The protocol: greeting, negotiation, input, errors, ids, HMP
// -----------------------------------------------------------------------------

const protocol: Group = {
  name: "the protocol",
  scenarios: [
    {
      name: "the greeting and the negotiation gate",
      negotiate: false,
      steps: [
        cmd("query-status", undefined, { id: "c1" }),
        cmd("no-such-command"),
        raw(json({ "exec-oob": "query-yank", id: 2 }), 1),
        cmd("qmp_capabilities", { enable: ["foo"] }, { id: 3 }),
        cmd("qmp_capabilities", { enable: "oob" }),
        cmd("qmp_capabilities", { bogus: 1 }),
        cmd("qmp_capabilities", { enable: ["oob"] }),
        cmd("qmp_capabilities", undefined, { id: { a: [1, "x"] } }),
        cmd("query-status", undefined, { id: 42 })
      ]
    },
    {
      name: "stop and cont, each event before its return, only when the state changes",
      steps: [
        cmd("stop"),
        cmd("stop"),
        cmd("query-status"),
        cmd("cont"),
        cmd("cont"),
        cmd("system_reset"),
        cmd("system_powerdown"),
        cmd("stop", { bogus: 1 }),
        cmd("query-version")
      ]
    },
    {
      name: "pipelined commands: 20 in one write, answered in order, each STOP or RESUME right before its return",
      steps: [
        raw(Array.from({ length: 20 }, (_, i) => json({ execute: i % 2 === 0 ? "stop" : "cont", id: i })).join(""), 20)
      ]
    },
    {
      name: "the members of a command, checked in QEMU's order",
      steps: [
        raw("{\"foo\":1,\"execute\":2}", 1),
        raw("{\"execute\":2,\"foo\":1}", 1),
        raw("{\"arguments\":1,\"execute\":\"stop\",\"id\":1}", 1),
        raw("{\"id\":1,\"bar\":2,\"baz\":3,\"arguments\":[],\"execute\":\"x\"}", 1),
        raw("{\"id\":\"x\"}", 1),
        raw("{}", 1),
        raw("{\"execute\":\"stop\",\"bogus\":1}", 1),
        raw("{\"exec-oob\":\"query-status\",\"id\":7}", 1),
        raw("[] 42 \"str\" null true ", 5)
      ]
    },
    {
      name: "a duplicate member and a clash of execute with exec-oob",
      steps: [
        cmd("qmp_capabilities", undefined, { id: "again" }),
        raw("{\"execute\":\"query-status\",\"execute\":\"stop\"}", 1),
        raw("{\"execute\":\"query-status\",\"id\":1,\"id\":2}", 1)
      ]
    },
    {
      name: "odd ids, echoed exactly as QEMU holds them",
      steps: [
        raw("{\"execute\":\"query-status\",\"id\":12345678901234567890}", 1),
        raw("{\"execute\":\"query-status\",\"id\":-9223372036854775808}", 1),
        raw("{\"execute\":\"query-status\",\"id\":18446744073709551616}", 1),
        raw("{\"execute\":\"query-status\",\"id\":-9223372036854775809}", 1),
        raw("{\"execute\":\"query-status\",\"id\":[1.5,0.1,1e2,-0,-0.0,1e-7,2.5E-308,123456789012345678901234]}", 1),
        raw("{\"execute\":\"query-status\",\"id\":{\"b\":1,\"a\":2,\"execute\":3,\"id\":{}}}", 1),
        raw("{\"execute\":\"query-status\",\"id\":null}", 1),
        raw("{\"execute\":\"query-status\",\"id\":true}", 1),
        raw("{\"execute\":\"query-status\",\"id\":'single \"quoted\"'}", 1),
        raw("{\"execute\":\"no-such\",\"id\":[]}", 1),
        // QEMU writes an overflowing number as `inf`, which is not JSON: the line counts as no reply.
        raw("{\"execute\":\"query-status\",\"id\":[1E400,-1e999]}", 0)
      ]
    },
    {
      name: "non-ASCII and control characters, written back as \\uXXXX",
      steps: [
        raw("{\"execute\":\"query-status\",\"id\":\"é€😀\\u00e9\\ud83d\\ude00\\u0000\\u001f\\u007f/\\\\\\\"\"}", 1),
        raw("{\"execute\":\"no-such-é\"}", 1),
        raw(new Uint8Array([...Buffer.from("{\"execute\":\"query-status\",\"id\":\""), 0xc0, 0x80, 0x22, 0x7d]), 1),
        raw("{\"execute\":\"query-status\",\"id\":\"\\t\\n\\r\\b\\f\\/\"}", 1)
      ]
    },
    {
      name: "malformed input: QEMU's parse errors, without an id",
      steps: [
        raw("{\"execute\": }", 1),
        raw("{\"execute\":\"query-status\",\"id\":01}", 2),
        raw("{\"execute\":\"query-status\",\"id\":1.}", 1),
        raw("{\"execute\":\"query-status\",\"id\":[1,]}", 1),
        raw("{\"execute\":\"query-status\",}", 1),
        raw("{\"execute\" \"query-status\"}", 1),
        raw("{1:2}", 1),
        raw("}", 1),
        raw("]", 1),
        raw("{\"a\":{\"b\":1}]", 1),
        raw("{\"execute\":\"query-status\",\"id\":tru}", 1),
        raw("{\"execute\":\"query-status\",\"id\":\"bad\\x\"}", 1),
        raw("{\"execute\":\"query-status\",\"id\":\"\\ud800\"}", 1),
        raw("{\"execute\":\"query-status\",\"id\":\"\\u12\"}", 1),
        raw("@ # {\"execute\":\"query-status\"}", 2),
        raw(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 1),
        raw(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xfe, 0x22, 0x7d]), 2),
        raw(new Uint8Array([0xff, 0x00, 0x01]), 3),
        raw("{\"execute\":\"query-status\",\"id\":\"a\u0001b\"}", 2),
        raw("[".repeat(1025) + "]".repeat(1025), 1026),
        raw("{\"a\":".repeat(1024) + "1" + "}".repeat(1024), 1),
        raw("{\"execute\":\"query-status\",\"id\":\"still serving\"}", 1)
      ]
    },
    {
      name: "a stream, not lines: no newline, several commands to a write, one over several writes",
      steps: [
        raw(
          "{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"query-status\",\"id\":2} {\"execute\":\"stop\",\"id\":3}",
          3
        ),
        raw("{\r\n  \"execute\": \"cont\",\r\n  \"id\": 4\r\n}\r\n", 1),
        raw("{\"execute\":\"query-status\",\"id\":5}", 1, [1, 2, 3, 11, 12, 13, 14, 28, 29, 30]),
        raw("\t\r\n 42 ", 1),
        raw("{\"execute\":\"query-status\",\"id\":6}\n\n\n", 1)
      ]
    },
    {
      name: "human-monitor-command",
      steps: [
        cmd("human-monitor-command", { "command-line": "info status" }, { id: 1 }),
        cmd("human-monitor-command", { "command-line": "info version" }, { id: 2 }),
        cmd("human-monitor-command", { "command-line": "info nope" }, { id: 3 }),
        cmd("human-monitor-command", { "command-line": "nope" }, { id: 4 }),
        cmd("human-monitor-command", { "command-line": "stop" }, { id: 5 }),
        cmd("human-monitor-command", { "command-line": "  info   status  " }, { id: 6 }),
        cmd("human-monitor-command", { "command-line": "c" }, { id: 7 }),
        cmd("human-monitor-command", { "command-line": "" }, { id: 8 }),
        cmd("human-monitor-command", {}, { id: 9 }),
        cmd("human-monitor-command", { "command-line": "info status", "cpu-index": 0 }, { id: 10 }),
        cmd("human-monitor-command", { "command-line": "info status", "cpu-index": "x" }, { id: 11 }),
        cmd("human-monitor-command", { "command-line": "info status extra" }, { id: 12 }),
        cmd("human-monitor-command", { "command-line": "help stop" }, { id: 13 }),
        cmd("human-monitor-command", { "command-line": 7 }, { id: 14 })
      ]
    },
    {
      name: "out-of-band execution",
      steps: [
        cmd("qmp_capabilities", { enable: ["oob"] }),
        raw(json({ "exec-oob": "query-yank", id: "o1" }), 1),
        raw(json({ "exec-oob": "query-status", id: "o2" }), 1),
        raw(json({ "exec-oob": "no-such", id: "o3" }), 1),
        raw(json({ "exec-oob": 3, id: "o4" }), 1),
        raw(json({ "exec-oob": "query-yank", execute: "query-status", id: "o5" }), 1),
        raw(json({ execute: "query-status", "exec-oob": "query-yank", id: "o6" }), 1)
      ],
      negotiate: false
    },
    {
      name: "the end of the input: what came before it is answered, a message not finished is dropped",
      steps: [
        raw(
          "{\"execute\":\"query-status\",\"id\":\"a\"}{\"execute\":\"stop\",\"id\":\"b\"}{\"execute\":\"cont\",\"id\":\"c\"}",
          0
        ),
        raw("{\"execute\":\"query-status\",\"id\":\"never\"", 0),
        end
      ]
    },
    {
      name: "quit: SHUTDOWN, the return, the end of the connection",
      steps: [cmd("quit", undefined, { id: "bye" })]
    }
  ]
}

// -----------------------------------------------------------------------------
// Block jobs
// -----------------------------------------------------------------------------

const jobs: Group = {
  name: "block jobs",
  scenarios: [
    {
      name: "nodes: blockdev-add and blockdev-del, with QEMU's errors",
      steps: [
        nullNode("n1", MiB),
        nullNode("n1", MiB),
        cmd("blockdev-add", { driver: "null-co", size: MiB }),
        cmd("blockdev-add", { driver: "null-co", "node-name": "n2", size: "big" }),
        cmd("blockdev-add", { "node-name": "n2" }),
        cmd("blockdev-del", { "node-name": "nope" }),
        cmd("blockdev-del", { "node-name": "n1" }),
        cmd("blockdev-del", {})
      ]
    },
    {
      name: "an unthrottled backup: its whole lifecycle before the return",
      steps: [
        nullNode("a-src", MiB),
        nullNode("a-tgt", MiB),
        backup("a1", "a-src", "a-tgt"),
        cmd("query-jobs"),
        backup("a2", "a-src", "nope"),
        backup("a2", "nope", "a-tgt"),
        backup("a2", "a-src", "a-tgt", { sync: "bogus" }),
        backup("", "a-src", "a-tgt"),
        backup("a2", "a-src", "a-tgt", { speed: -1 }),
        cmd("blockdev-del", { "node-name": "a-src" }),
        cmd("blockdev-del", { "node-name": "a-tgt" })
      ]
    },
    {
      name: "blockdev-backup's checks, in QEMU's order, after its drains",
      steps: [
        nullNode("c-src1"),
        nullNode("c-tgt1"),
        nullNode("c-src2", MiB),
        nullNode("c-tgt2", MiB),
        nullNode("c-tgt3", MiB),
        nullNode("c-tgt4"),
        backup("c1", "c-src1", "c-tgt1", { speed: MiB }),
        cmd("blockdev-backup", { device: "c-src2", target: "c-tgt2", sync: "full" }),
        backup("1x", "c-src2", "c-tgt2"),
        backup("c1", "c-src2", "c-tgt2"),
        backup("c2", "c-src2", "c-src2"),
        backup("c2", "c-src2", "c-tgt1"),
        backup("c2", "c-tgt1", "c-src1"),
        backup("c2", "c-src1", "c-tgt3"),
        cmd("blockdev-del", { "node-name": "c-src1" }),
        cmd("blockdev-del", { "node-name": "c-tgt1" }),
        backup("c3", "c-src2", "c-tgt2", { "auto-finalize": false }),
        cmd("job-pause", { id: "c3" }),
        cmd("query-jobs"),
        cmd("job-cancel", { id: "c3" }),
        cmd("query-block-jobs"),
        backup("c4", "c-src1", "c-tgt4"),
        cmd("blockdev-backup", { "job-id": "c5", device: "c-src2" }),
        cmd("blockdev-backup", { "job-id": "c5", device: "c-src2", target: "c-tgt2", sync: "full", speed: "x" }),
        cmd("job-cancel", { id: "c1" }),
        cmd("job-cancel", { id: "c1" })
      ]
    },
    {
      name: "auto-finalize and auto-dismiss off: pending, job-finalize, concluded, job-dismiss",
      steps: [
        nullNode("m-src", MiB),
        nullNode("m-tgt", MiB),
        backup("m1", "m-src", "m-tgt", { "auto-finalize": false, "auto-dismiss": false }),
        cmd("query-jobs"),
        cmd("job-dismiss", { id: "m1" }),
        cmd("job-finalize", { id: "m1" }),
        cmd("query-jobs"),
        cmd("job-finalize", { id: "m1" }),
        cmd("blockdev-del", { "node-name": "m-tgt" }),
        cmd("job-dismiss", { id: "m1" }),
        cmd("query-jobs"),
        cmd("job-dismiss", { id: "m1" }),
        cmd("blockdev-del", { "node-name": "m-src" })
      ]
    },
    {
      name: "throttled jobs: pause, resume, set-speed, cancel, query-jobs newest first",
      steps: [
        nullNode("t-src"),
        nullNode("t-tgt1"),
        nullNode("t-tgt2"),
        backup("t1", "t-src", "t-tgt1", { speed: MiB, "auto-dismiss": false }),
        backup("t2", "t-src", "t-tgt2", { speed: MiB }),
        cmd("query-jobs"),
        cmd("query-block-jobs"),
        cmd("job-pause", { id: "t1" }),
        cmd("job-pause", { id: "t1" }),
        cmd("block-job-pause", { device: "t1" }),
        cmd("query-block-jobs"),
        cmd("job-resume", { id: "t1" }),
        cmd("job-resume", { id: "t1" }),
        cmd("block-job-set-speed", { device: "t2", speed: 2 * MiB }),
        cmd("block-job-set-speed", { device: "t2", speed: -5 }),
        cmd("job-finalize", { id: "t1" }),
        cmd("job-dismiss", { id: "t1" }),
        cmd("blockdev-del", { "node-name": "t-tgt1" }),
        cmd("job-pause", { id: "t1" }),
        cmd("job-cancel", { id: "t1" }),
        cmd("query-jobs"),
        cmd("blockdev-del", { "node-name": "t-tgt1" }),
        cmd("job-dismiss", { id: "t1" }),
        cmd("block-job-cancel", { device: "t2" }),
        cmd("job-cancel", { id: "nope" }),
        cmd("block-job-cancel", { device: "nope" }),
        cmd("query-jobs"),
        cmd("blockdev-del", { "node-name": "t-tgt2" }),
        cmd("blockdev-del", { "node-name": "t-src" })
      ]
    },
    {
      name: "drains: a new job and stop pause and resume the running jobs",
      steps: [
        nullNode("d-src1"),
        nullNode("d-tgt1"),
        nullNode("d-src2"),
        nullNode("d-tgt2"),
        nullNode("d-tgt3"),
        backup("d1", "d-src1", "d-tgt1", { speed: MiB }),
        backup("d2", "d-src2", "d-tgt2", { speed: MiB }),
        backup("d3", "d-src1", "d-tgt3", { speed: MiB }),
        cmd("stop"),
        cmd("stop"),
        cmd("cont"),
        cmd("job-pause", { id: "d2" }),
        backup("d4", "d-src1", "d-tgt3", { speed: -1 }),
        cmd("stop"),
        cmd("cont"),
        cmd("job-cancel", { id: "d1" }),
        cmd("job-cancel", { id: "d2" }),
        cmd("job-cancel", { id: "d3" })
      ]
    },
    {
      name: "a throttled job that finishes in its own time",
      asynchronous: (event) => event.data?.id === "f1" || event.data?.device === "f1",
      steps: [
        nullNode("f-src", 2 * MiB),
        nullNode("f-tgt", 2 * MiB),
        backup("f1", "f-src", "f-tgt", { speed: 4 * MiB }),
        status("f1", "null"),
        cmd("query-jobs"),
        cmd("blockdev-del", { "node-name": "f-tgt" }),
        cmd("blockdev-del", { "node-name": "f-src" })
      ]
    }
  ]
}

const quitMidJob: Group = {
  name: "quit with jobs left",
  scenarios: [
    {
      name: "quit: SHUTDOWN, then each job (newest first) resumed if paused, cancelled, dismissed; the return",
      steps: [
        nullNode("q-src"),
        nullNode("q-tgt1"),
        nullNode("q-tgt2"),
        nullNode("q-tgt3"),
        nullNode("q-small1", MiB),
        nullNode("q-small2", MiB),
        backup("q1", "q-src", "q-tgt1", { speed: MiB }),
        backup("q2", "q-src", "q-tgt2", { speed: MiB, "auto-dismiss": false }),
        backup("q3", "q-small1", "q-small2", { "auto-dismiss": false }),
        backup("q4", "q-src", "q-tgt3", { speed: MiB }),
        cmd("job-pause", { id: "q2" }),
        cmd("quit")
      ]
    }
  ]
}

// -----------------------------------------------------------------------------
// A pretty monitor
// -----------------------------------------------------------------------------

const pretty: Group = {
  name: "a pretty monitor",
  pretty: true,
  scenarios: [
    {
      name: "messages over several lines, four spaces a level, empty objects and arrays on two",
      steps: [
        cmd("query-status"),
        cmd("stop", undefined, { id: { a: [1, {}, []], b: "é" } }),
        cmd("cont"),
        cmd("query-jobs"),
        cmd("no-such-command"),
        raw("{\"execute\": }", 1),
        cmd("human-monitor-command", { "command-line": "info status" }),
        cmd("query-version"),
        cmd("quit")
      ]
    }
  ]
}

export const groups: ReadonlyArray<Group> = [protocol, jobs, quitMidJob, pretty]
