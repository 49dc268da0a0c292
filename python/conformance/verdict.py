"""What the conformance scripts share: a suite's expected failures (a file of
"test id # reason" lines) and the verdict on a run's results against them."""

from __future__ import annotations

import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def expectations(filename: str) -> dict[str, str]:
    """The tests not expected to pass, each with its reason."""
    out = {}
    for line in (HERE / filename).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            test, _, reason = line.partition(" # ")
            out[test.strip()] = reason.strip()
    return out


def verdict(suite: str, results: dict[str, str], filename: str) -> int:
    """Prints the run's figures and the surprises both ways; the exit status: 1 when a test
    expected to pass failed (or nothing ran)."""
    expected = expectations(filename)
    unexpected = sorted(t for t, r in results.items() if r == "failed" and t not in expected)
    fixed = sorted(t for t, r in results.items() if r == "passed" and t in expected)
    for t in unexpected:
        print(f"UNEXPECTED FAILURE: {t}")
    for t in fixed:
        print(f"now passing (remove from {filename}): {t}")
    passed = sum(r == "passed" for r in results.values())
    failed = sum(r == "failed" for r in results.values())
    skipped = sum(r == "skipped" for r in results.values())
    total = len(results)
    print(f"{suite}: {passed} of {total} pass ({100 * passed / max(total, 1):.1f}%)")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if unexpected or total == 0 else 0
