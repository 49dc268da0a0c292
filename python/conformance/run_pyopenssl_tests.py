"""Runs pyOpenSSL's own test suite (tests/test_ssl.py of the pinned release, downloaded now,
never stored in this repository) against ferrossl installed under the ``OpenSSL`` name.

Prints "N passed, M failed, K skipped" and exits non-zero when a test that is expected to
pass fails; the tests not expected to pass are listed with a reason in expectations.txt.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

from verdict import verdict

PINNED = "pyOpenSSL==26.4.0"


def fetch(workdir: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(workdir), PINNED],
        check=True,
    )
    archive = next(workdir.glob("pyopenssl-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return next(p for p in workdir.iterdir() if p.is_dir() and p.name.startswith("pyopenssl-"))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        source = fetch(work)
        shim = work / "shim" / "OpenSSL"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("import ferrossl\nferrossl.install_as_pyopenssl()\n")
        report = work / "report.xml"
        env = {**__import__("os").environ, "PYTHONPATH": str(shim.parent)}
        subprocess.run(
            [sys.executable, "-m", "pytest", "tests/test_ssl.py", "-q", "-p", "no:cacheprovider", "--timeout=60", f"--junitxml={report}"],
            cwd=source,
            env=env,
            check=False,
        )
        results = {}
        for case in ET.parse(report).iter("testcase"):
            name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
            if case.find("skipped") is not None:
                results[name] = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                results[name] = "failed"
            else:
                results[name] = "passed"
    return verdict("pyOpenSSL conformance", results, "expectations.txt")


if __name__ == "__main__":
    sys.exit(main())
