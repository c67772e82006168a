"""The shape of the code: imports flow one way, and no class or function outgrows a screen.

Run as a script to see the project's import graph (function-level imports included), its cycles
(none, if the tests pass) and the longest classes and functions of ``utils/`` and ``models/``:

    python tests/test_layout.py

``--walk`` follows the config instead: it trains two one-epoch runs on a small image folder (one per data
path) and counts the files a reader enters following ``config`` from ``run_training`` through every call
that receives it, the times the walk comes back to a file it had left, and the calls that go up the import
graph (into a module that imports the caller's):

    python tests/test_layout.py --walk
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("utils", "models")
MAX_FUNCTION_LINES = 60  # docstrings not counted
MAX_CLASS_LINES = 200
MAX_MODULE_LINES = 350  # a module longer than this holds more than one idea: it becomes a package
# The files the product's first description named: a reader of it finds them where it said, and what stands
# behind them lives in sub-packages named for what they hold (data/, training/, after/, studies/).
FRONT_DOORS = ("utils/trainer.py", "utils/modern_trainer.py", "utils/augmentation.py", "utils/regularization.py",
               "utils/data_loader.py", "utils/visualization.py", "models/network.py", "models/resnet.py",
               "models/efficientnet.py", "models/cnn_transformer.py", "main.py", "main_modern.py", "benchmark_all.py")


def project_modules() -> dict[str, Path]:
    """Module name → file, for the packages and the top-level scripts and benchmarks."""
    modules = {}
    scripts = [*ROOT.glob("*.py"), *ROOT.glob("benchmarks/*.py"), *ROOT.glob("benchmarks/gpu/*.py")]
    for path in [*scripts, *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from utils import config`` imports the submodule; ``from models import register_model`` the package
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each sorted."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _body_lines(node: ast.AST) -> int:
    """Lines of a def/class, without its docstring (and without the docstrings of what it holds)."""
    lines = node.end_lineno - node.lineno + 1
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if (isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


def sizes() -> list[tuple[int, str, str]]:
    """(lines, kind, where) of every class and function in utils/ and models/, longest first."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    kind = "class" if isinstance(node, ast.ClassDef) else "function"
                    found.append((_body_lines(node), kind, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


# ------------------------------------------------------------------------------------ tests
def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_are_in_the_graph(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from utils.config import TrainConfig\n")
    assert imports_of(source, "x", {"utils.config": source, "utils": source}) == {"utils.config"}


def test_no_import_cycle_anywhere():
    assert find_cycles(import_graph()) == []


def test_no_function_or_class_outgrows_a_screen():
    too_long = [(lines, kind, where) for lines, kind, where in sizes()
                if lines > (MAX_CLASS_LINES if kind == "class" else MAX_FUNCTION_LINES)]
    assert too_long == []


def test_no_module_outgrows_its_idea():
    too_long = {str(path.relative_to(ROOT)): lines for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}


def test_the_described_files_are_where_the_description_put_them():
    assert [door for door in FRONT_DOORS if not (ROOT / door).is_file()] == []
    flat = [path.name for path in (ROOT / "utils").glob("*.py")]
    assert len(flat) <= 24, f"utils/ holds {len(flat)} modules side by side: group them by what they hold"


DOC_TOKEN = re.compile(r"`([^`\s]+?)(?:\(\))?`")
FILE_SUFFIXES = {"json", "csv", "pt", "png", "md", "txt", "log", "pt2", "onnx", "tgz", "gz", "sh", "yaml"}
DOC_POINTER = re.compile(r"^(?:(?:utils|models|benchmarks)/)?(\w+)\.(\w+)$")


def _definitions() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module stem → its top-level names, class name → its methods) over the project's modules."""
    names: dict[str, set[str]] = {}
    classes: dict[str, set[str]] = {}
    for path in project_modules().values():
        tree = ast.parse(path.read_text())
        found = names.setdefault(path.stem, set())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                found.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.ImportFrom):  # re-exported names (models/__init__.py)
                found.update(alias.asname or alias.name for alias in node.names)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):  # methods, and attributes set as self.NAME
                classes.setdefault(node.name, set()).update(
                    n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
                classes[node.name].update(t.attr for n in ast.walk(node) if isinstance(n, ast.Assign)
                                          for t in n.targets if isinstance(t, ast.Attribute)
                                          and isinstance(t.value, ast.Name) and t.value.id == "self")
    return names, classes


def doc_pointers_that_do_not_exist(text: str) -> list[str]:
    """Every `file.py`, `module.function` and `Class.method` in ``text`` that the code does not have."""
    names, classes = _definitions()
    missing = []
    for token in DOC_TOKEN.findall(text):
        if token.endswith(".py"):
            if not (ROOT / token).is_file() and not (token.count("/") == 0 and (ROOT / "utils" / token).is_file()):
                missing.append(token)
            continue
        match = DOC_POINTER.match(token)
        if not match or match.group(2) in FILE_SUFFIXES:
            continue
        owner, name = match.groups()
        if owner in names and name not in names[owner] and name not in classes.get(owner, ()):
            missing.append(token)
        elif owner in classes and owner not in names and name not in classes[owner]:
            missing.append(token)
    return missing


def test_the_pointer_check_finds_a_missing_function():
    assert doc_pointers_that_do_not_exist("`utils/trainer.py` and `trainer.train` and `Trainer.restore`") == []
    assert doc_pointers_that_do_not_exist("`trainer.no_such_thing`, `Trainer.no_such_method`, `utils/nope.py`") == [
        "trainer.no_such_thing", "Trainer.no_such_method", "utils/nope.py"]


def test_every_file_function_and_method_the_docs_name_exists():
    """README and the guide point at files, ``module.function`` and ``Class.method``: they must exist."""
    for doc in ("README.md", "MODERN_DL_GUIDE.md"):
        assert doc_pointers_that_do_not_exist((ROOT / doc).read_text()) == [], doc


def links_that_do_not_resolve(doc: Path) -> list[str]:
    """The relative Markdown links (``[text](path)``, ``![alt](path)``) of ``doc`` whose file is missing."""
    targets = re.findall(r"\]\(([^)#\s]+)", doc.read_text())
    return [t for t in targets if "://" not in t and not (doc.parent / t).exists()]


def test_the_link_check_finds_a_missing_file(tmp_path):
    (tmp_path / "here.png").write_bytes(b"")
    doc = tmp_path / "doc.md"
    doc.write_text("[a](here.png) ![b](gone.png) [c](https://x.org/y) [d](here.png#part) [e](sub/gone.md#x)")
    assert links_that_do_not_resolve(doc) == ["gone.png", "sub/gone.md"]


def test_every_link_in_the_docs_and_results_resolves():
    """README, the guide and every results report link to pictures and folders that are committed."""
    docs = [ROOT / "README.md", ROOT / "MODERN_DL_GUIDE.md", *sorted((ROOT / "benchmarks" / "results").rglob("*.md"))]
    broken = {str(doc.relative_to(ROOT)): links for doc in docs if (links := links_that_do_not_resolve(doc))}
    assert broken == {}


# ------------------------------------------------------------------------------------ the config's walk
def walk_counts(calls: Iterable[tuple[str, str]], graph: dict[str, set[str]]) -> dict[str, int]:
    """Files entered, returns and upward calls of a walk given as (caller module, callee module) calls.

    A return is a call into a module the walk had already entered, from another module; an upward call is
    one into a module that imports the caller's module (directly or not).
    """
    above: dict[str, set[str]] = {}  # module -> the modules that import it, directly or not

    def importers(module: str) -> set[str]:
        if module not in above:
            above[module] = set()
            direct = {m for m, targets in graph.items() if module in targets}
            above[module] = direct.union(*(importers(m) for m in direct)) if direct else set()
        return above[module]

    entered: list[str] = []
    returns = upward = 0
    for caller, callee in calls:
        if callee == caller:
            continue
        if callee in entered:
            returns += 1
        else:
            entered.append(callee)
        upward += callee in importers(caller)
    return {"files": len(entered), "returns": returns, "upward": upward}


def trace_walk(run, config_only: bool = True) -> list[tuple[str, str]]:
    """The (caller, callee) module of each project call made under ``run_training`` during ``run()``, each
    call read once (not once a batch). With ``config_only``, only the calls that receive the config (as an
    argument, or as the ``.config`` of one) from a call that did; the config's own methods are not steps.
    Calls through library code (``nn.Module.__call__``) count from the nearest project caller."""
    from utils.config import TrainConfig
    modules = {str(path): name for name, path in project_modules().items()}
    calls: list[tuple[str, str]] = []
    stack: list[tuple[bool, str | None, object]] = []  # (walking, nearest project module, its code)
    seen: set = set()

    def receives_config(frame) -> bool:
        code = frame.f_code
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        values = [frame.f_locals.get(name) for name in names]
        if names and names[0] in ("self", "cls") and isinstance(values[0], TrainConfig):
            return False
        return any(isinstance(value, TrainConfig) or isinstance(getattr(value, "config", None), TrainConfig)
                   for value in values)

    def profile(frame, event, arg) -> None:
        if event == "call":
            walking, caller, caller_code = stack[-1] if stack else (False, None, None)
            module = modules.get(frame.f_code.co_filename)
            if module is None:  # library code: passes the walk through
                stack.append((walking, caller, caller_code))
                return
            starts = module == "utils.experiment" and frame.f_code.co_name == "run_training"
            step = starts or (walking and (not config_only or receives_config(frame)))
            if step and not starts and (caller_code, frame.f_code) not in seen:
                seen.add((caller_code, frame.f_code))
                calls.append((caller, module))
            stack.append((step, module, frame.f_code))
        elif event == "return" and stack:
            stack.pop()

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def _walk_runs(root: Path) -> dict[str, list[tuple[str, str]]]:
    """One-epoch runs on a 40-image folder, one per data path, each traced."""
    import torch
    from torchvision.io import write_png
    from utils.config import TrainConfig
    from utils.experiment import run_training
    from utils.resolve import resolve
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 32), ("test", 8)):
        for index in range(count):
            folder = root / "data" / split / f"class{index % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=generator)
            write_png(pixels, str(folder / f"{index}.png"))
    walks = {}
    for mode in ("memory", "device"):
        config = resolve(TrainConfig(model="cnn", dataset="folder", data_dir=str(root / "data"), image_size=16,
                                     epochs=1, batch_size=16, data_mode=mode, workers=0, device="cpu",
                                     progress=False, output_dir=str(root / mode), cache_dir="", amp=False))
        walks[mode] = trace_walk(lambda: run_training(config))
        walks[f"{mode}, every call"] = trace_walk(lambda: run_training(config.replace(
            output_dir=str(root / f"{mode}-all"))), config_only=False)
    return walks


def test_the_walk_counts_files_returns_and_upward_calls():
    graph = {"top": {"mid"}, "mid": {"low"}, "low": set()}
    calls = [("top", "mid"), ("mid", "low"), ("low", "low"), ("low", "mid"), ("mid", "top"), ("top", "low")]
    # enters mid and low (and top, from low's callback); comes back to mid and to low; low->mid, mid->top go up
    assert walk_counts(calls, graph) == {"files": 3, "returns": 2, "upward": 2}


def print_walk() -> None:
    import tempfile
    sys.path.insert(0, str(ROOT))
    graph = import_graph()
    with tempfile.TemporaryDirectory() as root:
        walks = _walk_runs(Path(root))
    for mode, calls in walks.items():
        counts = walk_counts(calls, graph)
        visits: dict[str, int] = {}
        for caller, callee in calls:
            if caller != callee:
                visits[callee] = visits.get(callee, 0) + 1
        busiest = ", ".join(f"{m} {n}" for m, n in sorted(visits.items(), key=lambda kv: -kv[1])[:6])
        print(f"--data-mode {mode}: {counts['files']} files entered, {counts['returns']} returns, "
              f"{counts['upward']} upward calls; entered most: {busiest}")


if __name__ == "__main__" and "--walk" in sys.argv:
    print_walk()
elif __name__ == "__main__":
    graph = import_graph()
    for module in sorted(graph):
        print(f"{module} -> {', '.join(sorted(graph[module])) or '-'}")
    cycles = find_cycles(graph)
    print(f"\ncycles: {cycles or 'none'}")
    print("\nlongest (lines without docstrings):")
    ranked = sizes()
    for kind in ("class", "function"):
        for lines, k, where in [s for s in ranked if s[1] == kind][:5]:
            print(f"  {kind:<8} {lines:>4}  {where}")
