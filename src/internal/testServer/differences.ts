/**
 * Where `QmpTestServer` differs from QEMU 7.2 on purpose: the one list, shown by the README and by
 * `QmpTestServer.differences`. Everything else it does as QEMU does, and the conformance suite holds
 * it to that, against a real QEMU, under the normalisation that `test/conformance/normalise.ts`
 * writes down.
 *
 * @internal
 */

/** @internal */
export interface Difference {
  /** What differs. */
  readonly topic: string
  readonly qemu: string
  readonly testServer: string
  /** Why it is kept. */
  readonly reason: string
}

/** @internal */
export const differences: ReadonlyArray<Difference> = [
  {
    topic: "commands",
    qemu: "216 commands (`query-commands`)",
    testServer: "the ones its `make` lists, and those given to `handle`; any other is CommandNotFound",
    reason: "a test double for what tests drive; add what yours needs with `handle`"
  },
  {
    topic: "block drivers",
    qemu: "every driver (`file`, `qcow2`, `blkdebug`, ...)",
    testServer: "`null-co` and `null-aio` only",
    reason: "no disk, no I/O: jobs over nodes that read zeroes and drop writes, as the tests use on QEMU"
  },
  {
    topic: "block jobs",
    qemu: "backup, mirror, stream, commit, create; I/O errors",
    testServer: "backup only, and it never fails on I/O",
    reason: "the job lifecycle that tests of job handling need, without disks"
  },
  {
    topic: "progress of a throttled job",
    qemu: "bursts from its rate limiter (2 MiB at 4 MiB/s is done in about 0.75 s)",
    testServer: "`speed` bytes per second, in steps of 100 ms of the Effect `Clock`",
    reason: "deterministic, and driven by `TestClock` in tests; the conformance suite masks progress offsets"
  },
  {
    topic: "which nodes are busy",
    qemu: "op blockers and permissions of every node a job uses, its filter included",
    testServer: "the target of a job that has not concluded, and the source of one (`blockdev-del`)",
    reason: "the cases tests meet; the errors have QEMU's texts"
  },
  {
    topic: "HMP (`human-monitor-command`)",
    qemu: "every HMP command; `help` lists them all",
    testServer: "`help`, `info status`, `info version`, `stop`, `cont`, `quit`, `system_reset`, " +
      "`system_powerdown`; `help` lists those",
    reason: "the commands scripts and READMEs use; the conformance suite leaves `help`'s full text out"
  },
  {
    topic: "input left when a client hangs up, with `oob` on",
    qemu: "commands read but not run yet may be dropped (QEMU empties its queue when it sees the end: a race)",
    testServer: "always runs and answers them, as QEMU does without `oob`",
    reason: "a test should not depend on a race"
  },
  {
    topic: "`query-yank`",
    qemu: "the chardevs of its monitors",
    testServer: "`[{\"type\": \"chardev\", \"id\": \"compat_monitor0\"}]`",
    reason: "one monitor is what a test server stands for"
  },
  {
    topic: "version, package, timestamps",
    qemu: "its own version and package; the host's clock",
    testServer: "7.2.0 and \"effect-qmp QmpTestServer\" (options); the Effect `Clock`",
    reason: "a test can tell the two apart, and move time with `TestClock`; the conformance suite masks them"
  },
  {
    topic: "clients at once on one socket",
    qemu: "one; another gets no greeting until the first leaves",
    testServer: "the same by default; `exclusive: false` serves several at once",
    reason: "for tests of several clients without several sockets"
  }
]
