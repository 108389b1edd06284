"""Rules about how the code is put together, read from the source (AST, not text: a word in
a comment or a docstring is not an import or a call).

- Every boto3 client, resource and session is built in ``lakegov/aws.py``.
- Layers point down: the embedded runtime (``lakegov.local``) may import the domain, and
  no domain module imports the runtime, but for the exceptions named here with their reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"
CLIENT_FACTORY = SRC / "lakegov" / "aws.py"
BUILDERS = {"client", "resource", "Session", "session.Session"}

# Modules outside lakegov.local that may import it, and why.
MAY_IMPORT_THE_RUNTIME = {
    "lakegov.cli": "the console script: `lakegov local run` and `lakegov demo` start it",
    "lakegov.catalog.wiring": "the one wiring module that chooses a local stand-in "
    "(the crawler) when the settings say the function runs on the embedded runtime",
}


def _python_files() -> Iterator[Path]:
    yield from sorted(SRC.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' for anything else."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
        return ".".join(reversed(names))
    return ""


def boto3_builders(source: str) -> list[str]:
    """Where ``source`` builds a boto3 client, resource or session: ``boto3.client(...)``,
    ``boto3.session.Session(...)``, or a name imported from boto3 for that."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> what it is in boto3 ("boto3", "client"...)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "boto3" or alias.name.startswith("boto3."):
                    aliases[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else "boto3"
                    )
        elif isinstance(node, ast.ImportFrom) and node.module in ("boto3", "boto3.session"):
            prefix = "" if node.module == "boto3" else "session."
            for alias in node.names:
                name = prefix + alias.name
                if name in BUILDERS or alias.name == "session":
                    aliases[alias.asname or alias.name] = name
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        dotted = _dotted(node.func)
        if not dotted:
            continue
        head, _, rest = dotted.partition(".")
        if head not in aliases:
            continue
        target = aliases[head]
        full = target if not rest else f"{target}.{rest}"
        within = full.removeprefix("boto3.")
        if within in BUILDERS:
            found.append(f"line {node.lineno}: {dotted}(...)")
    return found


def runtime_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The ``lakegov.local`` modules ``source`` (the module ``module``) imports, at any depth
    (function-level imports included)."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name == "lakegov.local" or name.startswith("lakegov.local."):
                found.append(f"line {node.lineno}: {name}")
                break
    return found


def test_boto3_clients_and_sessions_are_built_in_aws_py_only():
    offenders = {
        str(path.relative_to(SRC)): hits
        for path in _python_files()
        if path != CLIENT_FACTORY and (hits := boto3_builders(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "build clients with lakegov.aws.Clients"


def test_the_client_factory_itself_is_seen_building_them():
    # the detector finds the real thing where it is (else the test above proves nothing)
    assert boto3_builders(CLIENT_FACTORY.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import boto3\nboto3.client('s3')", 1),
        ("import boto3\nboto3.resource('dynamodb')", 1),
        ("import boto3\nboto3.Session()", 1),
        ("import boto3\nboto3.session.Session(region_name='x')", 1),
        ("import boto3 as b\nb.client('s3')", 1),
        ("import boto3.session\nboto3.session.Session()", 1),
        ("from boto3 import client\nclient('s3')", 2),
        ("from boto3.session import Session as S\nS()", 2),
        ("def f():\n    import boto3\n    return boto3.client('sqs')", 1),
        ("# boto3.client('s3') in a comment\nx = 'boto3.client(\"s3\")'", 0),
        ("from boto3.dynamodb.types import TypeSerializer\nTypeSerializer()", 0),
        ("session.client('s3')", 0),
    ],
)
def test_the_client_rule_reads_code_not_text(source, expected):
    assert len(boto3_builders(source)) == expected


def test_domain_modules_do_not_import_the_embedded_runtime():
    offenders = {}
    for path in _python_files():
        module = _module_name(path)
        if not module.startswith("lakegov") or module.startswith("lakegov.local"):
            continue
        if module in MAY_IMPORT_THE_RUNTIME:
            continue
        hits = runtime_imports(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        )
        if hits:
            offenders[module] = hits
    assert offenders == {}, "the runtime imports the domain, never the reverse"


def test_each_named_exception_still_needs_its_place():
    # an exception nobody uses any more is removed, not kept as a standing permission
    for module in MAY_IMPORT_THE_RUNTIME:
        path = SRC / Path(*module.split("."))
        path = (
            path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
        )
        assert runtime_imports(path.read_text(encoding="utf-8"), module), module


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from lakegov.local.runtime import LocalRuntime", "lakegov.mesh.x", 1),
        ("import lakegov.local.crawler", "lakegov.catalog.x", 1),
        ("def f():\n    from lakegov.local import crawler", "lakegov.catalog.x", 1),
        ("from ..local import runtime", "lakegov.mesh.x", 1),
        ("from . import local", "lakegov.x", 1),
        ("from .local import LocalRunner", "lakegov.runners.x", 0),  # lakegov.runners.local
        ('"""see lakegov.local.runtime"""\nimport lakegov.localisation', "lakegov.x", 0),
    ],
)
def test_the_layer_rule_resolves_imports(source, module, expected):
    assert len(runtime_imports(source, module)) == expected
