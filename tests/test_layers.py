"""The package's imports run down its layers, and no module imports itself back through others.

Each module's imports (function-level ones included: a lazy import is still a dependency) are read from
its syntax tree, so a violation is reported with the file and line that makes it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exposeanyone"

LAYERS = {
    "core": 0,
    "media": 1, "demo": 1,
    "detectors": 2,
    "calibration": 3, "profiles": 3, "report": 3,
    "pipeline": 4,
    "evaluation": 5,
    "ui": 6, "cli": 6,
    "__init__": 7, "__main__": 7,
}
"""A module may import only from its own part or from parts of a lower layer."""

FORBIDDEN = [
    ("demo", ("media", "detectors", "calibration", "profiles", "report", "pipeline", "evaluation", "ui", "cli"),
     "demo/ makes example media from core/ alone"),
    ("detectors.exam", ("detectors.fau",), "EXAM and FauForensics never import each other"),
    ("detectors.fau", ("detectors.exam",), "EXAM and FauForensics never import each other"),
    ("cli", ("ui",), "the command line never imports the app's UI logic"),
]
"""``(importer prefix, imported prefixes, why)`` beyond the layer order."""

THIRD_PARTY_BANNED = {"gradio": "the library and ui/ stay gradio-free; app.py is the only gradio module"}
APP_EXTRA = {"plotly", "moviepy"}
"""Installed only with the ``app`` extra, so only ui/ may import them (``pip install .`` must give a working
library and command line)."""


@dataclass(frozen=True)
class Import:
    source: str
    """Importing module, relative to the package (``detectors.exam.detector``)."""
    target: str
    """Imported module or package, relative to the package; or ``third_party:<name>``."""
    file: Path
    line: int

    def where(self) -> str:
        return f"{self.file.relative_to(PACKAGE.parent)}:{self.line}"


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _modules() -> set[str]:
    return {_module_name(p)[0] for p in PACKAGE.rglob("*.py")}


def _resolve(target: str, names: list[str], modules: set[str]) -> list[str]:
    """``from target import a, b``: the submodules imported, else the module itself."""
    submodules = [f"{target}.{name}" if target else name for name in names]
    found = [m for m in submodules if m in modules]
    return found or [target]


def imports_of(path: Path, modules: set[str]) -> list[Import]:
    source, is_package = _module_name(path)
    package = source.split(".") if is_package and source != "__init__" else source.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                target = alias.name[len("exposeanyone."):] if top == "exposeanyone" else f"third_party:{top}"
                found.append(Import(source, target, path, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "exposeanyone":
                target = node.module[len("exposeanyone."):] if node.module != "exposeanyone" else ""
            else:
                found.append(Import(source, f"third_party:{(node.module or '').split('.')[0]}", path, node.lineno))
                continue
            for resolved in _resolve(target, [a.name for a in node.names], modules):
                found.append(Import(source, resolved or "__init__", path, node.lineno))
    return found


def all_imports() -> list[Import]:
    modules = _modules()
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in imports_of(path, modules)]


def _part(module: str) -> str:
    return module.split(".")[0]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(imports: list[Import]) -> list[str]:
    problems = []
    for i in imports:
        if i.target.startswith("third_party:"):
            name = i.target.split(":", 1)[1]
            if name in THIRD_PARTY_BANNED:
                problems.append(f"{i.where()}: {i.source} imports {name}: {THIRD_PARTY_BANNED[name]}")
            elif name in APP_EXTRA and _part(i.source) != "ui":
                problems.append(f"{i.where()}: {i.source} imports {name}, which only the app extra installs")
            continue
        source, target = _part(i.source), _part(i.target)
        if source != target and LAYERS[target] >= LAYERS[source]:
            problems.append(f"{i.where()}: {i.source} imports {i.target}, which is not in a lower layer")
        for importer, imported, why in FORBIDDEN:
            if _within(i.source, importer) and any(_within(i.target, p) for p in imported):
                problems.append(f"{i.where()}: {i.source} imports {i.target}: {why}")
    return problems


def import_cycles(imports: list[Import]) -> list[list[Import]]:
    """Every elementary cycle found by depth-first search (one per back edge)."""
    edges: dict[str, list[Import]] = {}
    for i in imports:
        if not i.target.startswith("third_party:") and i.target != i.source and i.target != "__init__":
            edges.setdefault(i.source, []).append(i)
    cycles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        for edge in edges.get(module, []):
            if state.get(edge.target) == "open":
                start = next(k for k, e in enumerate(stack) if e.source == edge.target) if stack else 0
                cycles.append(stack[start:] + [edge])
            elif edge.target not in state:
                stack.append(edge)
                visit(edge.target)
                stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    return cycles


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in _modules()}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_imports_only_run_down_the_layers():
    problems = layer_violations(all_imports())
    assert not problems, "\n".join(problems)


def test_no_import_circle():
    cycles = import_cycles(all_imports())
    assert not cycles, "\n".join(" -> ".join(f"{e.source} ({e.where()})" for e in c) + f" -> {c[-1].target}"
                                 for c in cycles)


# ------------------------------------------------------------------------------ the checker can fail
@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    root = tmp_path / "exposeanyone"

    def write(module: str, text: str) -> None:
        path = root / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in [path.parent, *path.parent.parents]:
            if folder == tmp_path:
                break
            (folder / "__init__.py").touch()
        path.write_text(text)

    monkeypatch.setattr(__import__(__name__), "PACKAGE", root)
    return write


def test_an_upward_import_is_reported_with_its_file_and_line(fake_package):
    fake_package("core.config", "import os\n\nfrom ..media.decode import probe\n")
    fake_package("media.decode", "from ..core import config\n")
    problems = layer_violations(all_imports())
    assert problems == ["exposeanyone/core/config.py:3: core.config imports media.decode, "
                        "which is not in a lower layer"]


def test_exam_importing_fau_gradio_and_cli_importing_ui_are_reported(fake_package):
    fake_package("detectors.exam.detector", "from ..fau import streams\n")
    fake_package("detectors.fau.streams", "import numpy\n")
    fake_package("ui.actions", "import gradio as gr\n")
    fake_package("cli.main", "def run():\n    from ..ui import actions\n")
    fake_package("report", "import plotly.graph_objects as go\n")
    problems = "\n".join(layer_violations(all_imports()))
    assert "detectors/exam/detector.py:1: detectors.exam.detector imports detectors.fau.streams" in problems
    assert "ui/actions.py:1: ui.actions imports gradio" in problems
    assert "cli/main.py:2: cli.main imports ui.actions: the command line never imports" in problems
    assert "report.py:1: report imports plotly, which only the app extra installs" in problems


def test_a_circle_through_lazy_imports_is_found(fake_package):
    fake_package("cli.main", "from .train import add\n")
    fake_package("cli.train", "def add():\n    from .main import helper\n")
    cycles = import_cycles(all_imports())
    assert [[e.source for e in c] for c in cycles] == [["cli.main", "cli.train"]]
    assert cycles[0][1].where() == "exposeanyone/cli/train.py:2"
