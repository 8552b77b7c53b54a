"""The _core.pyi stub lists exactly what the compiled module exports."""

import ast
import inspect
import pathlib

import backpropx
from backpropx import _core

STUB = pathlib.Path(backpropx.__file__).with_name("_core.pyi")
# Base classes that exist only in the stub, to share signatures.
STUB_ONLY = {"_Network", "_Optimizer", "_Trainer", "_Csr", "_Objective", "Rows"}


def stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    top: set[str] = set()
    classes: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            classes[node.name] = node

    def members(cls: ast.ClassDef) -> set[str]:
        names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        names |= {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                names |= members(classes[base.id])
        return {n for n in names if not n.startswith("_") or n == "__init__"}  # as module_names()

    return top - STUB_ONLY, {name: members(c) for name, c in classes.items() if name not in STUB_ONLY}


def module_names() -> tuple[set[str], dict[str, set[str]]]:
    top = {n for n in dir(_core) if not n.startswith("_") or n == "__version__"}
    classes = {}
    for name in top:
        obj = getattr(_core, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            classes[name] = {m for m in vars(obj) if not m.startswith("_") or m == "__init__"}
    return top, classes


def test_stub_matches_module():
    stub_top, stub_classes = stub_names()
    mod_top, mod_classes = module_names()
    assert stub_top == mod_top
    for name, members in mod_classes.items():
        assert stub_classes[name] == members, name


def test_stub_check_catches_a_missing_name(monkeypatch):
    monkeypatch.setattr(_core, "brand_new_function", lambda: None, raising=False)
    assert module_names()[0] != stub_names()[0]
