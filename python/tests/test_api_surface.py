"""The public surface stays documented, typed and tested: every public name has a docstring,
the native module's stub lists exactly what the module has (and mypy's stubtest agrees with
its signatures), and every public method and property is mentioned in some test file."""

from __future__ import annotations

import ast
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

import ferrossl
from ferrossl import SSL, _native, bio, crypto, version

PACKAGE = pathlib.Path(ferrossl.__file__).parent
TESTS = pathlib.Path(__file__).parent
MODULES = [ferrossl, SSL, crypto, bio, version]


def _public_objects(module):
    """(qualified name, object) for the public classes, functions, methods and properties
    a module defines (imported names and constants left out)."""
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        # install_as_pyopenssl() (run by another test) names the classes OpenSSL.*.
        claimed = module.__name__.replace("ferrossl.", "OpenSSL.")
        if obj.__module__ not in (module.__name__, _native.__name__, claimed):
            continue
        yield f"{module.__name__}.{name}", obj
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    yield f"{module.__name__}.{name}.{attr}", member


def test_every_public_name_has_a_docstring():
    undocumented = [
        qualname
        for module in MODULES
        for qualname, obj in _public_objects(module)
        if not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


def _stub_names(tree: ast.Module) -> dict[str, set[str]]:
    """Top-level names the stub defines, each class with the members it declares."""
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")
            }
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
    return {k: v for k, v in names.items() if not k.startswith("_")}


def test_native_stub_matches_the_module():
    stub = _stub_names(ast.parse((PACKAGE / "_native.pyi").read_text()))
    runtime = {name for name in dir(_native) if not name.startswith("_")}
    assert set(stub) == runtime
    for name, members in stub.items():
        obj = getattr(_native, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            declared = {m for m in vars(obj) if not m.startswith("_")}
            assert members == declared, name


def _mypy(*args: str) -> subprocess.CompletedProcess:
    try:
        import mypy  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("mypy is not installed (python/run-tests.sh installs it)")
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        timeout=300,
    )


def test_stubtest_agrees_with_the_signatures():
    out = _mypy("mypy.stubtest", "ferrossl._native")
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_type_checks_against_the_stub():
    out = _mypy("mypy", "--cache-dir=/dev/null", "ferrossl")
    assert out.returncode == 0, out.stdout + out.stderr


#: The classes (by the name tests use) whose every public method and property a test must
#: exercise.
COVERED = [
    (SSL, "Context"),
    (SSL, "Connection"),
    (SSL, "Session"),
    (SSL, "Error"),
    (SSL, "WantReadError"),
    (SSL, "WantWriteError"),
    (SSL, "WantX509LookupError"),
    (SSL, "ZeroReturnError"),
    (SSL, "SysCallError"),
    (crypto, "X509"),
    (crypto, "X509Name"),
    (crypto, "PKey"),
    (crypto, "X509Store"),
    (crypto, "X509StoreContext"),
    (crypto, "X509StoreContextError"),
    (crypto, "Error"),
    (bio, "SSLContext"),
    (bio, "SSL"),
    (bio, "BIO"),
    (bio, "TLSSocket"),
]


def _mentioned(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def test_every_public_method_is_exercised_by_a_test():
    """A method, property or function counts as exercised when a test file names it (this
    file excluded): new API without a test fails here instead of drifting untested."""
    text = "\n".join(p.read_text() for p in TESTS.glob("*.py") if p.name != pathlib.Path(__file__).name)
    names = set()
    for module, name in COVERED:
        names.add(name)
        cls = getattr(module, name)
        for attr, member in vars(cls).items():
            if not attr.startswith("_") and (callable(member) or isinstance(member, (property, classmethod, staticmethod))):
                names.add(attr)
    for module in (SSL, crypto):
        names.update(n for n, obj in vars(module).items() if inspect.isfunction(obj) and not n.startswith("_"))
    untested = sorted(n for n in names if not _mentioned(text, n))
    assert untested == []
