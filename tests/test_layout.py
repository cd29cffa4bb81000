"""The import graph keeps its shape: no cycles, the pipeline's core never reaches into
``subscribers/``, and only ``subscribers/web/`` (and ``paperboy run``) touch the web framework."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "subscribers")
WEB_FRAMEWORKS = ("fastapi", "starlette", "uvicorn")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def is_type_checking(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The modules an import statement names (``from a import b`` names ``a.b`` if that is a
    module, else ``a``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in MODULES else base


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    """What ``path`` imports: everything, or only what runs when it is imported (not inside a
    function or under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(imported(node))
            continue
        if top_level_only and (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            or (isinstance(node, ast.If) and is_type_checking(node))
        ):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def first_party(names: set[str]) -> set[str]:
    return {n for n in names if n in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)) is not None:
            return cycle
    return None


def is_core(module: str) -> bool:
    return module.startswith("pipeline") and not (
        module == "pipeline.cli" or module.startswith("pipeline.commands")
    )


def test_first_party_modules_import_each_other_without_a_cycle() -> None:
    """Every module imports cleanly on its own: no cycle among module-level imports, nor one
    that a function-local import would hide."""
    for top_level_only in (True, False):
        graph = {
            name: first_party(imports(path, top_level_only=top_level_only)) - {name}
            for name, path in MODULES.items()
        }
        assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_cli_registers_its_commands_explicitly() -> None:
    """pipeline/cli.py imports its command modules by name; nothing is loaded by string."""
    names = imports(MODULES["pipeline.cli"], top_level_only=True)
    assert "importlib" not in names
    assert {f"pipeline.commands.{m}" for m in ("config", "email", "service")} <= names


def test_the_pipeline_core_never_imports_subscribers() -> None:
    """Delivery, the store and the rest of the core stand on their own; only the CLI reaches
    the subscription service (not even inside a function or for type checking)."""
    arrows = sorted(
        f"{name} → {target}"
        for name, path in MODULES.items()
        if is_core(name)
        for target in imports(path, top_level_only=False)
        if target.split(".")[0] == "subscribers"
    )
    assert arrows == []


def test_only_subscribers_web_imports_the_web_framework() -> None:
    """The subscription core is framework-free; FastAPI stays under subscribers/web/."""
    offenders = sorted(
        f"{name} → {target}"
        for name, path in MODULES.items()
        if not name.startswith("subscribers.web") and name != "pipeline.commands.service"
        for target in imports(path, top_level_only=False)
        if target.split(".")[0] in WEB_FRAMEWORKS
    )
    assert offenders == []


def test_only_paperboy_run_imports_the_web_app() -> None:
    """The admin commands work without the web app; only `paperboy run` serves it."""
    offenders = sorted(
        f"{name} → {target}"
        for name, path in MODULES.items()
        if not name.startswith("subscribers.web") and name != "pipeline.commands.service"
        for target in imports(path, top_level_only=False)
        if target == "subscribers.web" or target.startswith("subscribers.web.")
    )
    assert offenders == []


def test_the_checks_see_the_arrows_they_guard_against(tmp_path: Path) -> None:
    """The cycle finder and the import reader catch what they should (so a pass means something)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = tmp_path / "probe.py"
    source.write_text(
        "import x\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import y\n"
        "def f():\n    import z\n",
        encoding="utf-8",
    )
    assert imports(source, top_level_only=True) == {"x", "typing"}
    assert imports(source, top_level_only=False) == {"x", "typing", "y", "z"}
