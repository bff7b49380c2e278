"""The code's layout holds: folders by concern, no import cycles, no module named like the standard library,
and every socket frame's HTML rendered in chat/fragments.py."""

import ast
import sys
from pathlib import Path

import pytest

CHAT = Path(__file__).resolve().parents[1] / "chat"


def modules() -> dict[str, Path]:
    found = {}
    for path in CHAT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(CHAT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_at_module_level(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The chat modules `name` imports when it is imported (not inside functions or TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_between_chats_modules():
    known = modules()
    graph = {name: imports_at_module_level(name, path, known) for name, path in known.items()}
    assert sum(len(edges) for edges in graph.values()) > 50  # the walk really finds the imports
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_named_like_a_standard_library_module():
    clashes = {path.stem for path in CHAT.rglob("*.py")} & set(sys.stdlib_module_names)
    # chat.selectors is the project's Python API (HackSoft's styleguide names it so), used by scripts.
    assert clashes == {"selectors"}


@pytest.mark.parametrize("folder", ["accounts", "realtime", "protection", "backends"])
def test_each_folder_says_what_it_holds(folder):
    assert ast.get_docstring(ast.parse((CHAT / folder / "__init__.py").read_text()))


def test_socket_frames_are_rendered_in_fragments_only():
    """Every frame's HTML comes from chat/fragments.py: no socket module renders a template itself."""
    renders = {
        path.name
        for path in (CHAT / "realtime").glob("*.py")
        if "render_to_string" in path.read_text() or "render_in(" in path.read_text()
    }
    assert renders == set()
