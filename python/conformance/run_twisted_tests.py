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

from verdict import verdict

PINNED = "twisted[tls,test]==26.10.0"
MODULES = ("twisted.protocols.test.test_tls", "twisted.test.test_sslverify", "twisted.test.test_ssl")
#: Seconds a test may take; trial's own default (120) would let a hang eat CI's budget.
TEST_TIMEOUT = 30
#: Seconds the whole run may take (about one when nothing hangs): a test that blocks without
#: returning to trial's reactor is not stopped by its timeout.
RUN_TIMEOUT = 900
#: One line of trial's bwverbose reporter: "<test id> ... [OK]".
RESULT = re.compile(r"^(?P<test>[\w.]+) \.\.\. .*\[(?P<status>[A-Z!?]+)\]$")
#: Trial's count of the tests it ran.
RAN = re.compile(r"^Ran (?P<count>\d+) tests? in ", re.MULTILINE)


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
        try:
            out = subprocess.run(
                [sys.executable, str(pathlib.Path(__file__).resolve()), "--trial"],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            print(e.stdout.decode(errors="replace")[-20000:] if e.stdout else "")
            print(f"Twisted's TLS tests did not finish within {RUN_TIMEOUT} s")
            return 1
    results: dict[str, str] = {}
    for line in out.stdout.splitlines():
        m = RESULT.match(line.strip())
        if m:
            # TODO is a failure Twisted itself expects (on pyOpenSSL too).
            status = {"OK": "passed", "SKIPPED": "skipped", "TODO": "passed"}.get(m["status"], "failed")
            # A test reported twice (an error found while cleaning up) keeps its worst outcome.
            if results.get(m["test"]) != "failed":
                results[m["test"]] = status
    ran = RAN.search(out.stdout)
    if any(r == "failed" for r in results.values()) or ran is None:
        print(out.stdout[-20000:], out.stderr[-5000:])
    if ran is None or int(ran["count"]) != len(results):
        # A crash, or a result line that test output broke: the run proves nothing.
        print(f"trial ran {ran['count'] if ran else 'no'} tests; {len(results)} results were read")
        return 1
    return verdict("Twisted TLS tests", results, "twisted-expectations.txt")


if __name__ == "__main__":
    if sys.argv[1:] == ["--trial"]:
        run_trial()
    else:
        sys.exit(main())
