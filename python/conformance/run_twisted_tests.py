"""Runs Twisted's TLS tests (from the pinned release, installed now from PyPI, never stored in
this repository) against ferrossl installed under the ``OpenSSL`` name: a real program's
suite, which depends on behaviours pyOpenSSL's own suite never checks.

Prints "N passed, M failed, K skipped" and exits non-zero when a test that is expected to
pass fails; tests not expected to pass are listed with a reason in
twisted-expectations.txt (a feature refused on purpose, never "not done yet").
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile

PINNED = "twisted[tls,test]==26.10.0"
MODULES = ("twisted.protocols.test.test_tls", "twisted.test.test_sslverify", "twisted.test.test_ssl")
#: Seconds a test may take; trial's own default (120) would let a hang eat CI's budget.
TEST_TIMEOUT = 30
HERE = pathlib.Path(__file__).resolve().parent
#: One line of trial's bwverbose reporter: "<test id> ... [OK]".
RESULT = re.compile(r"^(?P<test>[\w.]+) \.\.\. .*\[(?P<status>[A-Z!?]+)\]$")


def expectations() -> dict[str, str]:
    out = {}
    for line in (HERE / "twisted-expectations.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            test, _, reason = line.partition(" # ")
            out[test.strip()] = reason.strip()
    return out


def run_trial() -> None:
    """The child process: ferrossl is ``OpenSSL`` (the shim on PYTHONPATH), trial runs."""
    from twisted.scripts import trial
    from twisted.trial import util

    util.DEFAULT_TIMEOUT_DURATION = TEST_TIMEOUT
    sys.argv = ["trial", "--reporter=bwverbose", *MODULES]
    trial.run()


def main() -> int:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PINNED], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        shim = work / "shim" / "OpenSSL"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("import ferrossl\nferrossl.install_as_pyopenssl()\n")
        env = {**os.environ, "PYTHONPATH": str(shim.parent)}
        out = subprocess.run(
            [sys.executable, str(pathlib.Path(__file__).resolve()), "--trial"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    results: dict[str, str] = {}
    for line in out.stdout.splitlines():
        m = RESULT.match(line.strip())
        if m:
            # TODO is a failure Twisted itself expects (on pyOpenSSL too).
            status = {"OK": "passed", "SKIPPED": "skipped", "TODO": "passed"}.get(m["status"], "failed")
            # A test reported twice (an error found while cleaning up) keeps its worst outcome.
            if results.get(m["test"]) != "failed":
                results[m["test"]] = status
    expected = expectations()
    unexpected = sorted(t for t, r in results.items() if r == "failed" and t not in expected)
    fixed = sorted(t for t, r in results.items() if r == "passed" and t in expected)
    if unexpected:
        print(out.stdout[-20000:])
    for t in unexpected:
        print(f"UNEXPECTED FAILURE: {t}")
    for t in fixed:
        print(f"now passing (remove from twisted-expectations.txt): {t}")
    passed = sum(r == "passed" for r in results.values())
    failed = sum(r == "failed" for r in results.values())
    skipped = sum(r == "skipped" for r in results.values())
    print(f"Twisted TLS tests: {passed} of {len(results)} pass")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if unexpected or not results else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--trial"]:
        run_trial()
    else:
        sys.exit(main())
