"""The package's shape: one import root, no import circle (between modules, inside a package or between packages),
nothing imports the command line, only commands take parsed arguments, the library never imports the research
harness built on it, no folder outgrows the others, the model's own files (shipped with every saved model) import
only what a fresh environment has, and every function fits a screen."""

from __future__ import annotations

import ast
import configparser
import functools
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
# Installed subpackage -> its folder in this repository (setup.cfg's package_dir).
FOLDERS = {
    "ovmlv": "ovmlv",
    "ovmlv.modeling_ovmlv": "modeling_ovmlv",
    "ovmlv.processing": "processing",
    "ovmlv.training": "training",
    "ovmlv.organism": "organism",
    "ovmlv.hub_cards": "hub_cards",
    "ovmlv.video_library": "video_library",
}
# What the remote-code folders may import besides their own package and the standard library: a fresh environment
# with transformers (which brings huggingface_hub and safetensors), PyAV and Pillow for video; peft only for the
# LoRA adapter ablation, imported when such a model is built.
REMOTE_CODE_IMPORTS = {
    "modeling_ovmlv": {"torch", "numpy", "transformers", "safetensors", "huggingface_hub", "peft"},
    "processing": {"torch", "numpy", "transformers", "huggingface_hub", "av", "PIL"},
}


@functools.cache
def module_files() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    modules = {}
    for package, folder in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports, relative or absolute, at module level or inside a function: an import
    deferred into a function still makes a circle, only one that a reader no longer sees at the top of the file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            # `from package import module` depends on the module; `from module import name` on the module.
            submodules = [f"{prefix}.{alias.name}" for alias in node.names if f"{prefix}.{alias.name}" in known]
            targets = submodules if len(submodules) == len(node.names) else [prefix, *submodules]
        else:
            continue
        found |= {target for target in targets if target in known}
    return found - {name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def test_the_build_installs_one_import_root_and_every_subpackage():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    assert all(package == "ovmlv" or package.startswith("ovmlv.") for package in listed)
    packages = {name for name, path in module_files().items() if path.name == "__init__.py"}
    assert packages <= listed, "add new subpackages to setup.cfg's packages (and their data files to package_data)"
    for data_only in listed - packages:  # folders of data files (tokenizers, metric scripts)
        package, _, rest = data_only.partition(".")
        top, _, below = rest.partition(".")
        assert (REPO / FOLDERS[f"ovmlv.{top}"] / below.replace(".", "/")).is_dir(), data_only


def first_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of `graph` (node -> the nodes it imports), as the path that closes it, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for imported in sorted(graph.get(node, ())):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported]
            if imported not in state and (circle := visit(imported, [*path, imported])):
                return circle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node, [node])):
            return circle
    return None


def package_of(module: str) -> str:
    """The package (folder) a module lives in; a package's `__init__` belongs to the package itself."""
    return module if module_files()[module].name == "__init__.py" else module.rpartition(".")[0]


def test_no_module_imports_itself_back(graph):
    """Inside a package or across packages: `a -> b -> ... -> a` between modules."""
    circle = first_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_package_imports_itself_back(graph):
    """Between packages (folders): `training -> commands -> training` is a circle even when no module is in one."""
    packages: dict[str, set[str]] = {}
    for a, imported in graph.items():
        packages.setdefault(package_of(a), set()).update(
            package_of(b) for b in imported if package_of(b) != package_of(a)
        )
    circle = first_circle(packages)
    assert circle is None, "package import circle: " + " -> ".join(circle)


def test_nothing_imports_the_command_line(graph):
    importers = sorted(name for name, imported in graph.items() if "ovmlv.cli" in imported)
    assert importers == ["ovmlv.__main__"]


def test_only_commands_import_commands(graph):
    """A command parses its options and calls a typed library function; library code calls that function too, never
    a command (which would mean building an argv for its own CLI)."""
    importers = sorted(
        name
        for name, imported in graph.items()
        if not name.startswith("ovmlv.commands") and any(target.startswith("ovmlv.commands") for target in imported)
    )
    assert not importers, f"import a command module instead of the library function it calls: {importers}"


HARNESS = "ovmlv.organism"  # the model organism and the experiments on it: built on the library, never under it


def test_the_library_never_imports_the_research_harness(graph):
    """Imports go one way: library <- research harness <- commands. Only `ovmlv <subcommand>` modules may reach
    into the harness from outside it."""
    importers = {
        name
        for name, imported in graph.items()
        if not name.startswith(f"{HARNESS}.") and name != HARNESS
        for target in imported
        if target == HARNESS or target.startswith(f"{HARNESS}.")
    }
    outside_commands = sorted(name for name in importers if not name.startswith("ovmlv.commands."))
    assert not outside_commands, f"library modules import the harness {HARNESS}: {outside_commands}"


# Functions outside the commands that read parsed options, each a command-layer helper only commands call: the
# labels every labelling command takes, and a config dataclass from the flags `add_field_arguments` made.
NAMESPACE_READERS = {"ovmlv.arguments.given_labels", "ovmlv.training.config.from_arguments"}


def namespace_readers(module: str, path: Path) -> set[str]:
    """The functions of a module (by module and name) with a parameter annotated `argparse.Namespace`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            annotations = {ast.unparse(p.annotation) for p in parameters if p.annotation is not None}
            if annotations & {"argparse.Namespace", "Namespace"}:
                found.add(f"{module}.{node.name}")
    return found


def test_only_commands_take_parsed_arguments():
    """A command unpacks its `argparse.Namespace` into a library call with typed arguments: a library function that
    takes the Namespace hides which options it reads, and a library caller would have to fake a command line."""
    readers = {
        name
        for module, path in module_files().items()
        if not module.startswith("ovmlv.commands.")
        for name in namespace_readers(module, path)
    }
    assert not (stale := NAMESPACE_READERS - readers), f"no longer take a Namespace: drop {stale} from the list"
    assert readers <= NAMESPACE_READERS, (
        f"take typed arguments instead of a Namespace: {sorted(readers - NAMESPACE_READERS)}"
    )


MAX_FOLDER_SHARE = 0.35  # no room holds most of the house: a newcomer finds a thing by its folder
BENCHMARKS = "bench"


def test_no_folder_holds_more_than_35_percent_of_the_code():
    """Python lines per top-level folder (the package's folders and the benchmarks; tests apart)."""
    lines = {
        folder: sum(len(path.read_text(encoding="utf-8").splitlines()) for path in (REPO / folder).rglob("*.py"))
        for folder in (*FOLDERS.values(), BENCHMARKS)
    }
    total = sum(lines.values())
    crowded = {folder: f"{n / total:.0%}" for folder, n in lines.items() if n > MAX_FOLDER_SHARE * total}
    assert not crowded, f"over {MAX_FOLDER_SHARE:.0%} of {total} lines: {crowded}; give part of it a room of its own"


@pytest.mark.parametrize("folder", sorted(REMOTE_CODE_IMPORTS))
def test_remote_code_imports_only_its_own_package_and_a_fresh_environment(folder):
    allowed = REMOTE_CODE_IMPORTS[folder] | {"__future__"}
    for path in sorted((REPO / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = {node.module.split(".")[0]}
            else:
                continue
            outside = {root for root in roots if root not in allowed and root not in sys.stdlib_module_names}
            assert not outside, f"{path.name} imports {sorted(outside)}: a saved model's code must not need it"


MAX_FUNCTION_LINES = 80  # a screen: a function a reader holds in mind at once
# Functions left longer, each with its reason; the test fails when one of them fits again, so the list only shrinks.
LONG_FUNCTIONS: set[str] = set()


def function_lengths(module: str, path: Path) -> dict[str, int]:
    """Every function and method of a module by qualified name -> its length in lines (docstring included)."""
    lengths = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), module)
    return lengths


def test_every_function_fits_a_screen():
    lengths = {
        name: n for module, path in module_files().items() for name, n in function_lengths(module, path).items()
    }
    long = {name for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not (stale := LONG_FUNCTIONS - long), f"now {MAX_FUNCTION_LINES} lines or fewer: drop {stale} from the list"
    assert long <= LONG_FUNCTIONS, f"over {MAX_FUNCTION_LINES} lines: {sorted(long - LONG_FUNCTIONS)}; split them"
