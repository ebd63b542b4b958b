#!/usr/bin/env python3
"""Unit tests of tools/test_summary.py (run by tools/test as a check)."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_summary as ts  # noqa: E402

LIB = """\
     Running unittests src/lib.rs (target/debug/deps/understudy_actors-ff43b229030f661c)

running 3 tests
test monitor::custom::tests::sync ... ok
test monitor::custom::tests::dropping ... FAILED
test monitor::ip::tests::loopback_answers ... ok

failures:

---- monitor::custom::tests::dropping stdout ----
thread 'monitor::custom::tests::dropping' panicked at actors/src/monitor/custom.rs:1:1:
Text file busy (os error 26)

failures:
    monitor::custom::tests::dropping

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s

"""

CLUSTER = """\
     Running tests/cluster.rs (target/debug/deps/cluster-e097a16649f3a47e)

running 2 tests
test moves ... ok
test three ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

"""

CRASHED = """\
     Running tests/guardian.rs (target/debug/deps/guardian-1fd2b3d135e6d95b)

running 8 tests
test a ... ok
error: test failed, to rerun pass `--test guardian`

Caused by:
  process didn't exit successfully: `target/debug/deps/guardian-1fd2b3d135e6d95b` (signal: 6, SIGABRT)
"""

IGNORED = """\
     Running tests/alerts.rs (target/debug/deps/alerts-ec9594deed543e33)

running 2 tests
test slow ... ignored, takes an hour
test quick ... ok

test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.50s
"""


def lines(text):
    return text.splitlines(keepends=True)


class Counting(unittest.TestCase):
    def test_passes_failures_and_checks(self):
        s = ts.summarize(lines(LIB + CLUSTER), 101, [], [("fmt", True), ("clippy", False)])
        self.assertEqual(s.passed, 2 + 2 + 1)
        self.assertEqual(
            s.failed,
            ["clippy (check)", "understudy_actors::monitor::custom::tests::dropping"],
        )
        self.assertEqual(s.line(), "5 passed, 2 failed, 0 skipped")

    def test_a_check_that_skipped_counts_as_skipped_with_its_reason(self):
        s = ts.summarize(lines(CLUSTER), 0, [], [("fmt", True), ("package", "not root")])
        self.assertEqual(s.line(), "3 passed, 0 failed, 1 skipped")
        self.assertEqual(s.skipped, ["package (check): not root"])

    def test_a_skip_is_taken_off_the_passed(self):
        skips = [
            "cluster\tmoves\tping\t`ping` is not installed\n",
            # The same test may record more than one skip: counted once.
            "cluster\tmoves\tping\tagain\n",
            "understudy_actors\tmonitor::ip::tests::loopback_answers\troot\tno ICMP socket\n",
        ]
        s = ts.summarize(lines(LIB + CLUSTER), 101, skips, [])
        self.assertEqual(s.line(), "2 passed, 1 failed, 2 skipped")
        self.assertIn("cluster::moves (lacks ping): `ping` is not installed", s.skipped)

    def test_a_skip_of_a_failed_test_counts_as_failed_only(self):
        skips = ["understudy_actors\tmonitor::custom::tests::dropping\troot\tpart\n"]
        s = ts.summarize(lines(LIB), 101, skips, [])
        self.assertEqual(s.line(), "2 passed, 1 failed, 0 skipped")

    def test_a_skip_off_the_test_thread_is_a_failure(self):
        skips = ["cluster\t(not a test thread)\troot\tnot root\n"]
        s = ts.summarize(lines(CLUSTER), 0, skips, [])
        self.assertEqual(s.line(), "2 passed, 1 failed, 0 skipped")
        self.assertIn("matches no passed test", s.failed[0])

    def test_a_crashed_binary_is_a_failure_and_later_binaries_count(self):
        s = ts.summarize(lines(CRASHED + CLUSTER), 101, [], [])
        self.assertEqual(s.line(), "2 passed, 1 failed, 0 skipped")
        self.assertTrue(s.failed[0].startswith("guardian (tests/guardian.rs)"), s.failed)

    def test_ignored_tests_are_skipped(self):
        s = ts.summarize(lines(IGNORED), 0, [], [])
        self.assertEqual(s.line(), "1 passed, 0 failed, 1 skipped")
        self.assertEqual(s.skipped, ["alerts::slow (#[ignore])"])

    def test_a_build_error_is_a_failure(self):
        log = "error[E0425]: cannot find value `x` in this scope\n"
        s = ts.summarize(lines(log), 101, [], [("fmt", True)])
        self.assertEqual(s.line(), "1 passed, 1 failed, 0 skipped")
        self.assertIn("cargo test: exit status 101", s.failed[0])

    def test_interleaved_output_does_not_hide_a_failure(self):
        # A daemon's stderr may land in the middle of libtest's lines.
        log = LIB.replace(
            "test monitor::custom::tests::dropping ... FAILED",
            "2026-11-22T01:03:50Z INFO started\ntest monitor::custom::tests::dropping ... FAILED",
        )
        s = ts.summarize(lines(log), 101, [], [])
        self.assertEqual(s.line(), "2 passed, 1 failed, 0 skipped")

    def test_crate_names(self):
        self.assertEqual(ts.crate_of("target/debug/deps/single_server-e551e4a4688a9fc6"), "single_server")
        self.assertEqual(ts.crate_of("target/debug/deps/understudy_actors-ff43b229030f661c"), "understudy_actors")


class Output(unittest.TestCase):
    def test_the_summary_is_the_last_line_and_the_exit_status_follows_failures(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "log")
            with open(log, "w") as f:
                f.write(LIB + CLUSTER)
            skips = os.path.join(d, "skips")
            with open(skips, "w") as f:
                f.write("cluster\tthree\tping\tno ping\n")
            out = os.path.join(d, "out")
            saved = sys.stdout
            try:
                with open(out, "w") as sys.stdout:
                    status = ts.main(
                        [
                            "--log", log, "--exit", "101", "--skips", skips,
                            "--check", "fmt=ok", "--check", "package=skipped: not root",
                        ]
                    )
            finally:
                sys.stdout = saved
            with open(out) as f:
                printed = f.read().splitlines()
        self.assertEqual(status, 1)
        self.assertEqual(printed[-1], "4 passed, 1 failed, 2 skipped")
        self.assertIn("  package (check): not root", printed)
        self.assertIn("  understudy_actors::monitor::custom::tests::dropping", printed)
        self.assertIn("  cluster::three (lacks ping): no ping", printed)

    def test_nothing_failed_exits_0(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "log")
            with open(log, "w") as f:
                f.write(CLUSTER)
            saved = sys.stdout
            try:
                with open(os.devnull, "w") as sys.stdout:
                    status = ts.main(["--log", log, "--exit", "0", "--skips", os.path.join(d, "none")])
            finally:
                sys.stdout = saved
        self.assertEqual(status, 0)


if __name__ == "__main__":
    unittest.main()
