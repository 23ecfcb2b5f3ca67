"""The package is floored by role (docs/architecture.md): a module imports only from its own floor
and below, stages do not call one another, and no imports run in a circle. Every import statement
counts, those inside functions too."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "fgood_bench"

# floor -> the top-level modules and folders of fgood_bench on it, lowest first
FLOORS = {
    "ground": {"__init__", "errors", "progress", "interrupt", "outputs", "metrics", "paper", "inputs"},
    "tools": {"tools"},
    "datasets": {"datasets"},
    "manifests": {"manifests"},
    "stages": {"ranking", "outliers", "training", "evaluation", "audit"},
    "compose": {"publish", "publish_config", "demo", "summary", "study"},
    "commands": {"commands"},
    "entry": {"cli", "__main__"},
}
LEVEL = {unit: level for level, units in enumerate(FLOORS.values()) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The top-level module or folder of a fgood_bench module (``fgood_bench`` itself: ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The fgood_bench modules ``path`` imports, anywhere in the file (``from X import y`` where y is a
    module counts as importing X.y)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("fgood_bench"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fgood_bench") and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def test_every_module_is_on_a_floor():
    units = {unit_of(name) for name in import_graph()}
    assert units <= set(LEVEL), f"place these on a floor (here and in docs/architecture.md): {units - set(LEVEL)}"


def test_no_import_runs_back_up_a_floor_and_stages_do_not_call_each_other():
    upward, across = [], []
    for name, imported in import_graph().items():
        for target in imported:
            source_unit, target_unit = unit_of(name), unit_of(target)
            if target == "fgood_bench" and name != "fgood_bench":
                continue  # `from fgood_bench import __version__` (ground)
            if LEVEL[target_unit] > LEVEL[source_unit]:
                upward.append(f"{name} -> {target}")
            elif source_unit != target_unit and source_unit in FLOORS["stages"] and target_unit in FLOORS["stages"]:
                across.append(f"{name} -> {target}")
    assert not upward, f"imports that run back up a floor: {upward}"
    assert not across, f"stages calling stages (only the composing layer may): {across}"


def test_no_circles():
    graph = import_graph()
    state, stack, circles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == "open":
                circles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, f"import circles: {circles}"
    folders = defaultdict(set)  # and none between folders (a folder imports a folder that imports it back)
    for name, imported in graph.items():
        for target in imported:
            if unit_of(target) != unit_of(name):
                folders[unit_of(name)].add(unit_of(target))
    two_way = sorted({tuple(sorted((a, b))) for a, targets in folders.items() for b in targets if a in folders.get(b, ())})
    assert not two_way, f"folders importing each other: {two_way}"


def test_the_architecture_page_names_every_floor():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for units in FLOORS.values():
        for unit in units - {"__init__", "__main__"}:
            assert f"`{unit}" in text, unit


def test_help_and_command_line_errors_import_no_torch():
    """`fgood-bench --help`, `datasets`, a subcommand's --help and an argparse error stay light."""
    code = ("import sys\nfrom fgood_bench.cli import main\n"
            "for argv in (['--help'], ['datasets'], ['evaluate', '--help'], ['build-splits', '--nope']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = sorted(m for m in ('torch', 'torchvision', 'datasets', 'pyarrow.parquet') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-2000:]
