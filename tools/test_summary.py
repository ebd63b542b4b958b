#!/usr/bin/env python3
"""The counting behind tools/test's last line: "N passed, M failed, K skipped".

Inputs: the output of `cargo test --no-fail-fast` (every line it printed),
its exit status, the skip log the tests wrote (tests/common/skip.rs: one
line CRATE<TAB>TEST<TAB>TOOL<TAB>REASON per skip) and the checks tools/test
ran besides (fmt, clippy, this file's own tests, the package's test), each
passed, failed or skipped (with the reason).

- passed: tests that ran in full and passed, plus the checks that passed;
- failed: failed tests, test binaries that ended without a result (a crash,
  an abort), a `cargo test` that failed with no failed test (a build error),
  skips recorded off a test's thread, and the checks that failed;
- skipped: tests that passed but recorded a skip (they did not run, or not
  in full), tests marked #[ignore], and the checks that skipped.

Usage: test_summary.py --log FILE --exit STATUS --skips FILE
       [--check NAME=ok|failed|skipped:REASON]...
Prints the failed and skipped names, then the summary line; exits 1 when
anything failed.
"""

import argparse
import re
import sys
from dataclasses import dataclass, field

# `     Running tests/cluster.rs (target/debug/deps/cluster-e097a16649f3a47e)`
RUNNING = re.compile(r"^\s+Running (.+?) \((.+)\)\s*$")
DOC_TESTS = re.compile(r"^\s+Doc-tests (\S+)\s*$")
# `test a::b ... ok`, `test a ... FAILED`, `test a ... ignored, reason`
TEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")
# `---- a::b stdout ----` (the failure report of one test)
FAILURE_HEADER = re.compile(r"^---- (\S+) stdout ----")
RESULT = re.compile(
    r"^test result: (ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored;"
)


def crate_of(binary_path):
    """`target/debug/deps/single_server-e551e4a4688a9fc6` -> `single_server`."""
    name = binary_path.rsplit("/", 1)[-1]
    stem, dash, suffix = name.rpartition("-")
    if dash and re.fullmatch(r"[0-9a-f]{8,}", suffix):
        return stem
    return name


@dataclass
class Binary:
    crate: str
    source: str
    passed: int = 0
    failed: int = 0
    ignored: int = 0
    finished: bool = False
    ok_tests: set = field(default_factory=set)
    failed_tests: list = field(default_factory=list)
    ignored_tests: list = field(default_factory=list)


def parse_log(lines):
    """The test binaries in the order they ran."""
    binaries = []
    current = None
    for line in lines:
        line = line.rstrip("\n")
        m = RUNNING.match(line)
        if m:
            current = Binary(crate=crate_of(m.group(2)), source=m.group(1))
            binaries.append(current)
            continue
        m = DOC_TESTS.match(line)
        if m:
            current = Binary(crate=m.group(1), source="doc-tests")
            binaries.append(current)
            continue
        if current is None:
            continue
        m = TEST_LINE.match(line)
        if m:
            name, outcome = m.groups()
            if outcome == "ok":
                current.ok_tests.add(name)
            elif outcome == "FAILED":
                if name not in current.failed_tests:
                    current.failed_tests.append(name)
            else:
                current.ignored_tests.append(name)
            continue
        m = FAILURE_HEADER.match(line)
        if m:
            if m.group(1) not in current.failed_tests:
                current.failed_tests.append(m.group(1))
            continue
        m = RESULT.match(line)
        if m:
            current.passed = int(m.group(2))
            current.failed = int(m.group(3))
            current.ignored = int(m.group(4))
            current.finished = True
    return binaries


def parse_skips(lines):
    """(crate, test) -> (tool, reason), first record of each test."""
    skips = {}
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        parts = line.split("\t", 3)
        while len(parts) < 4:
            parts.append("")
        crate, test, tool, reason = parts
        skips.setdefault((crate, test), (tool, reason))
    return skips


@dataclass
class Summary:
    passed: int = 0
    failed: list = field(default_factory=list)  # names, with why when not a test
    skipped: list = field(default_factory=list)  # "crate::test (tool): reason"

    def line(self):
        return f"{self.passed} passed, {len(self.failed)} failed, {len(self.skipped)} skipped"


def summarize(log_lines, cargo_exit, skip_lines, checks):
    """checks: [(name, result)] in the order they ran; result True (passed),
    False (failed) or the reason it skipped (a string)."""
    s = Summary()
    for name, result in checks:
        if result is True:
            s.passed += 1
        elif result is False:
            s.failed.append(f"{name} (check)")
        else:
            s.skipped.append(f"{name} (check): {result}")
    binaries = parse_log(log_lines)
    skips = parse_skips(skip_lines)
    matched = set()
    for b in binaries:
        if not b.finished:
            s.failed.append(
                f"{b.crate} ({b.source}): the test binary ended without a result"
                " (crashed or killed; its output is above)"
            )
            continue
        s.passed += b.passed
        names = [f"{b.crate}::{t}" for t in b.failed_tests[: b.failed]]
        # A failure count without names (output lost in a flood): still counted.
        names += [f"{b.crate}: a failed test"] * (b.failed - len(names))
        s.failed.extend(names)
        for t in b.ignored_tests:
            s.skipped.append(f"{b.crate}::{t} (#[ignore])")
        s.skipped.extend([f"{b.crate}: an ignored test"] * (b.ignored - len(b.ignored_tests)))
        for (crate, test), (tool, reason) in sorted(skips.items()):
            if crate == b.crate and test in b.ok_tests and (crate, test) not in matched:
                matched.add((crate, test))
                s.passed -= 1
                s.skipped.append(f"{crate}::{test} (lacks {tool}): {reason}")
    for (crate, test), (tool, reason) in sorted(skips.items()):
        if (crate, test) in matched:
            continue
        failed_there = any(
            b.crate == crate and test in b.failed_tests for b in binaries
        )
        if not failed_there:
            s.failed.append(
                f"{crate}::{test}: a skip (lacks {tool}: {reason}) that matches no passed test"
                " (call Missing::skip on the test's own thread)"
            )
    if cargo_exit != 0 and not any(
        not b.finished or b.failed for b in binaries
    ):
        s.failed.append(
            f"cargo test: exit status {cargo_exit} with no failed test (a build error? see above)"
        )
    return s


def render(s):
    out = []
    if s.skipped:
        out.append(f"skipped ({len(s.skipped)}):")
        out.extend(f"  {n}" for n in s.skipped)
    if s.failed:
        out.append(f"FAILED ({len(s.failed)}):")
        out.extend(f"  {n}" for n in s.failed)
    out.append(s.line())
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", required=True)
    p.add_argument("--exit", type=int, required=True)
    p.add_argument("--skips", required=True)
    p.add_argument(
        "--check", action="append", default=[], metavar="NAME=ok|failed|skipped:REASON"
    )
    a = p.parse_args(argv)
    checks = []
    for c in a.check:
        name, _, result = c.partition("=")
        if result.startswith("skipped"):
            checks.append((name, result.partition(":")[2].strip() or "skipped"))
        else:
            checks.append((name, result == "ok"))
    with open(a.log, encoding="utf-8", errors="replace") as f:
        log_lines = f.readlines()
    try:
        with open(a.skips, encoding="utf-8", errors="replace") as f:
            skip_lines = f.readlines()
    except FileNotFoundError:
        skip_lines = []
    s = summarize(log_lines, a.exit, skip_lines, checks)
    print("\n".join(render(s)))
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
