"""Layering rules import-linter cannot see (its contracts in pyproject.toml catch imports):
no dialect and no web-layer module decides by a backend's *name*. What a backend can do is
declared once, in its :class:`~llm_gateway.core.ports.Capabilities`, and consulted there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llm_gateway.backends import BACKENDS
from llm_gateway.backends.tgi.generate import TGIGenerate
from llm_gateway.core.ports import Capabilities

SRC = Path(__file__).resolve().parents[1] / "src" / "llm_gateway"
CONSULTERS = sorted([*(SRC / "dialects").rglob("*.py"), *(SRC / "http").rglob("*.py")])


def _names_backend(node: ast.AST) -> bool:
    """``….backend`` (a model's setting) or ``….backend(model).name`` (a backend's name)."""
    if isinstance(node, ast.Call):
        return _names_backend(node.func)
    if isinstance(node, ast.Attribute):
        if node.attr == "backend":
            return True
        return node.attr == "name" and _names_backend(node.value)
    return False


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
        _is_literal(e) for e in node.elts
    )


def backend_name_checks(source: str) -> list[int]:
    """Lines that compare a backend setting or name to a literal (``==``, ``!=``, ``in``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_names_backend(o) for o in operands) and any(_is_literal(o) for o in operands):
                lines.append(node.lineno)
    return lines


def test_the_scan_sees_a_backend_named_by_name():
    """The check itself can fail: each spelling of the old tests is caught."""
    for line in (
        'relay = model.backend == "openai"',
        'if model.backend != "openai": pass',
        'x = model.backend in ("openai", "tgi-messages")',
        'x = "openai" == ctx.service.backend(model).name',
    ):
        assert backend_name_checks(line) == [1], line
    assert backend_name_checks("relay = ctx.service.backend(model).capabilities.tools") == []


@pytest.mark.parametrize("path", CONSULTERS, ids=lambda p: str(p.relative_to(SRC)))
def test_no_dialect_or_web_module_names_a_backend(path: Path):
    lines = backend_name_checks(path.read_text())
    assert lines == [], f"{path.relative_to(SRC)}:{lines} decides by a backend's name"


def test_every_backend_declares_its_capabilities():
    """Every registered backend says what it can do; nothing else (no ``chat`` flag beside
    them) is read."""
    for name, make in BACKENDS.items():
        backend = make()
        assert isinstance(backend.capabilities, Capabilities), name
        assert not hasattr(backend, "chat"), name
    assert TGIGenerate.capabilities == Capabilities()  # prompts, and TGI echoes them itself
    openai = BACKENDS["openai"]().capabilities
    assert openai.openai_chat and not openai.prompt_echo
    messages = BACKENDS["tgi-messages"]().capabilities
    assert messages.chat and not messages.openai_chat


# The core's public types carry no wire dicts: TGI's tokens and details, an upstream's chat
# chunk and the usage are all typed (core.events); backends build them, dialects render them.


def wire_dicts(path: Path) -> set[tuple[str, str, str]]:
    """Public fields of public classes annotated with a ``dict``/``Mapping``."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for field in node.body:
                if (
                    isinstance(field, ast.AnnAssign)
                    and isinstance(field.target, ast.Name)
                    and not field.target.id.startswith("_")
                    and any(t in ast.unparse(field.annotation) for t in ("dict[", "Mapping["))
                ):
                    found.add((path.name, node.name, field.target.id))
    return found


def test_the_wire_dict_scan_sees_a_dict_field(tmp_path: Path):
    """The check itself can fail: a public dict field is found, a private one is not."""
    module = tmp_path / "m.py"
    module.write_text(
        "class Event:\n    data: dict[str, Any]\n    _raw: dict[str, Any]\n"
        "class _Private:\n    data: Mapping[str, Any]\n"
        "class Chunk:\n    usage: Mapping[str, int] | None\n"
    )
    assert wire_dicts(module) == {("m.py", "Event", "data"), ("m.py", "Chunk", "usage")}


def test_the_core_public_types_carry_no_wire_dicts():
    found = set().union(*(wire_dicts(p) for p in (SRC / "core").glob("*.py")))
    assert found == set(), f"wire dicts in the core's public types: {sorted(found)}"


# Dialect encoders return frames (http.frames); http/sse.py alone spells SSE bytes. The import
# contract in pyproject.toml keeps `llm_gateway.http.sse` out of the dialects; this keeps its
# bytes out of their source.
SSE_SPELLINGS = (b"data:", b"event:")


def sse_literals(source: str) -> list[int]:
    """Lines with a bytes literal spelling an SSE field."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, bytes)
        and any(field in node.value for field in SSE_SPELLINGS)
    ]


def test_the_sse_scan_sees_sse_bytes_spelled():
    """The check itself can fail: each spelling the old encoders used is caught."""
    for line in (
        'out = b"data: " + payload + b"\\n\\n"',
        "out = b'event: ' + kind.encode()",
        'DONE = b"data: [DONE]\\n\\n"',
    ):
        assert sse_literals(line) == [1], line
    assert sse_literals('DONE = Frame(b"[DONE]")') == []


@pytest.mark.parametrize(
    "path", sorted((SRC / "dialects").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_no_dialect_spells_sse_bytes(path: Path):
    lines = sse_literals(path.read_text())
    assert lines == [], f"{path.relative_to(SRC)}:{lines} spells SSE bytes (return frames)"
    assert "sse_event" not in path.read_text()
