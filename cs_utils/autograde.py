"""How ``cs-course grade`` runs a submission: the grader's side of the sandbox.

nbgrader, left to itself, runs a student's notebook in an ordinary kernel: the
student's code and the hidden tests share one namespace and one interpreter,
so an answer can replace the comparison helpers, hide a test's error, read the
expected values of a hidden test, or open the source notebooks. This module
closes that, in four steps, each of them a plain function or an nbgrader
preprocessor so that ``cs_utils.course`` can run them where it likes (a local
process pool or a Dask cluster):

1. **Canonical notebook** (:class:`RestoreCellOrder`, an nbgrader sanitize
   preprocessor). The notebook that runs is the release's sequence of cells:
   instructor cells (setup, visible and hidden tests) come from the release
   whatever the student did to them (deleted, reordered, edited, retyped,
   given other metadata); answer cells come from the student, found by their
   grade_id (the first one when it was duplicated); every other cell of the
   student's (scratch cells, an answer cell whose grade_id was removed or
   renamed, a duplicate) follows the instructor or answer cell it followed in
   the student's notebook. nbgrader's own ``OverwriteCells`` then restores the
   hidden tests, points and checksums.

2. **Static policy** (:func:`vet_notebook`, outside the kernel). Student code
   runs only if it keeps to ordinary numerical Python: no introspection
   (frames, tracebacks, ``globals()``, ``eval``, dunder attributes such as
   ``__globals__``), no reaching the interpreter or IPython (``get_ipython``,
   ``sys._getframe``, ``sys.settrace``, ``sys.modules``), no monkeypatching
   (attributes are assigned only on ``self``; names the tests use are not
   rebound), no reading a name that only the tests define, imports only from
   an allow-list. A cell that breaks a rule is not run; the student's
   feedback says which line and why. Because the grader's tests run in the
   same kernel, this is what keeps them honest: no answer can change what a
   check does or see what it compares with.

3. **Sandboxed execution** (:func:`execute_notebook`, in a worker). The
   kernel is :mod:`cs_utils.sandbox`: a private working folder holding only
   this student's files, limits on memory, CPU time and file size, an audit
   hook that confines files, processes, network and native code. Each cell
   has a timeout (the kernel is interrupted, and killed if it ignores the
   interrupt); the submission has a wall-clock budget. When the kernel dies
   (``os._exit``, a signal, the CPU limit) or runs out of memory, a fresh
   kernel replays the cells that had run, skips the one that killed it, and
   goes on. Between cells the referee puts back any instructor module or name
   that changed. The result is the executed notebook and a report.

4. **Replay** (:class:`ReplayExecute`, in nbgrader's autograde stage, in the
   coordinating process). nbgrader autogrades the same canonical notebook
   with the executed outputs copied in, so that scoring, the gradebook, late
   penalties and the autograded files are all nbgrader's own.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import copy
import dataclasses
import json
import os
import re
import shutil
import signal
import string
import symtable
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Dict, Integer, List, Unicode

from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = [
    "Violation",
    "PolicyContext",
    "policy_context",
    "vet_cell",
    "vet_notebook",
    "cell_role",
    "RestoreCellOrder",
    "ReplayExecute",
    "ExecutionSettings",
    "execute_notebook",
    "execute_submission",
    "SandboxClient",
]

# --------------------------------------------------------------------------
# cell roles
# --------------------------------------------------------------------------


def cell_role(cell: dict) -> str:
    """``"test"`` (an autograded test cell), ``"instructor"`` (any other locked cell),
    ``"answer"`` (an nbgrader solution cell) or ``"student"`` (anything else)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution"):
        return "answer"
    if meta.get("grade") and meta.get("grade_id"):
        return "test"
    if meta.get("locked") and meta.get("grade_id"):
        return "instructor"
    return "student"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# --------------------------------------------------------------------------
# the static policy
# --------------------------------------------------------------------------

# Imported freely (with every public attribute). A reference implementation
# (any of scipy, torch, cs_utils.functional) may be imported: calling it while a
# test runs the answer is what the grading module's reference guard reports
# (cs_utils.grading.BLOCKED_MODULES), and the report notes it.
FREE_MODULES: tuple[str, ...] = (
    "numpy", "math", "cmath", "random", "statistics", "fractions", "decimal", "numbers", "itertools",
    "functools", "collections", "heapq", "bisect", "copy", "dataclasses", "enum", "abc", "time", "timeit",
    "warnings", "re", "json", "textwrap", "pprint", "typing", "matplotlib", "mpl_toolkits", "PIL", "torch",
    "torchvision", "sklearn", "scipy", "tqdm", "cs_utils", "IPython.display", "ipywidgets",
)
NOT_IMPORTABLE: tuple[str, ...] = ("cs_utils.course", "cs_utils.sandbox", "cs_utils.autograde")
# Imported with the listed attributes only (and used only as ``module.attribute``).
RESTRICTED_MODULES: dict[str, frozenset[str]] = {
    "os": frozenset({"path", "getcwd", "listdir", "environ", "getenv", "cpu_count", "getpid", "sep", "linesep",
                     "makedirs", "mkdir", "remove", "walk", "scandir", "_exit", "kill", "devnull"}),
    "os.path": frozenset({"join", "exists", "isfile", "isdir", "basename", "dirname", "splitext", "split",
                          "abspath", "getsize", "sep", "expanduser"}),
    "sys": frozenset({"exit", "version", "version_info", "platform", "maxsize", "float_info", "int_info",
                      "getsizeof", "stdout", "stderr", "byteorder", "getrecursionlimit"}),
    # no alarm(): a handler that fires in the middle of a test has no business there
    "signal": frozenset({"signal", "SIGINT", "SIGTERM", "SIGKILL", "SIG_IGN", "SIG_DFL", "Signals",
                         "default_int_handler", "getsignal"}),
}
# Dunder attributes and names an answer may use; all others are refused.
ALLOWED_DUNDERS = frozenset({
    "__init__", "__name__", "__qualname__", "__doc__", "__main__", "__call__", "__len__",
    "__iter__", "__next__", "__repr__", "__str__", "__getitem__", "__setitem__", "__contains__", "__enter__",
    "__exit__", "__post_init__", "__version__", "__add__", "__sub__", "__mul__", "__truediv__", "__matmul__",
})
# Dunder methods a student class may define: none that answers a comparison,
# a conversion, an isinstance question or an attribute lookup.
ALLOWED_DUNDER_DEFS = frozenset({
    "__init__", "__call__", "__len__", "__iter__", "__next__", "__repr__", "__str__", "__getitem__",
    "__setitem__", "__contains__", "__enter__", "__exit__", "__post_init__",
})
# Attributes refused whatever they are looked up on: frames, code, tracebacks,
# generators' frames, raw memory and native code, modules that reach the
# interpreter, and a few functions that read files or evaluate strings.
BLOCKED_ATTRIBUTES = frozenset({
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "f_lasti", "f_lineno",
    "tb_frame", "tb_next", "tb_lasti", "tb_lineno", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame",
    "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await", "co_code", "co_consts", "co_names",
    "cell_contents", "func_globals", "func_code", "im_func",
    "sys", "os", "builtins", "gc", "inspect", "importlib", "ctypes", "ctypeslib", "_ctypes", "cffi",
    "subprocess", "_posixsubprocess", "posix", "pty", "threading", "_thread", "multiprocessing", "socket",
    "pickle", "_pickle", "marshal", "shelve", "types", "code", "codeop", "runpy", "pdb", "bdb", "trace",
    "tracemalloc", "faulthandler", "resource", "shutil", "tempfile", "sqlite3", "IPython", "ipykernel",
    "jupyter_client", "zmq", "traitlets", "nbformat", "nbclient", "nbgrader", "sandbox", "autograde", "course",
    "asyncio", "concurrent", "copyreg", "operator", "weakref", "atexit", "string",
    "_getframe", "settrace", "setprofile", "gettrace", "getprofile", "addaudithook", "modules", "meta_path",
    "path_hooks", "displayhook", "excepthook", "exc_info", "last_traceback", "set_custom_exc",
    "input_transformers_cleanup", "input_transformers_post", "ast_transformers", "showtraceback",
    "as_strided", "from_file", "load_library", "setflags", "f2py", "distutils", "get_type_hints",
    "ForwardRef", "get_annotations", "evaluate_forward_ref", "_eval_type",
})
# "modules" is also torch's Module.modules(): refused only where the base is a restricted module.
_ATTRIBUTES_ALLOWED_ON_OBJECTS = frozenset({"modules"})
# Builtins an answer may not name at all.
BLOCKED_NAMES = frozenset({
    "get_ipython", "globals", "locals", "vars", "eval", "exec", "compile", "__import__", "breakpoint",
    "input", "help", "delattr", "memoryview", "copyright", "credits", "license",
    "In", "Out", "_ih", "_oh", "_dh", "_i", "_ii", "_iii", "__", "___",
})
_IPYTHON_NAME = re.compile(r"^_i?\d+$")
_DUNDER_IN_TEXT = re.compile(r"__\w+__")
SAFE_BUILTINS = frozenset(
    name for name in dir(__import__("builtins"))
    if not name.startswith("_") and name not in BLOCKED_NAMES
) | {"display", "exit", "quit"}  # IPython puts display, exit and quit into the kernel's builtins
ALLOWED_MAGICS = frozenset({"time", "timeit", "matplotlib", "precision"})
_CODE_MAGICS = frozenset({"time", "timeit"})


@dataclasses.dataclass
class Violation:
    """One rule a cell breaks: where, and why it matters."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclasses.dataclass
class PolicyContext:
    """What the policy needs to know about a notebook's instructor and student cells."""

    instructor_names: set[str] = dataclasses.field(default_factory=set)  # bound by locked setup cells
    instructor_imports: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> "module[:attr]"
    test_names: set[str] = dataclasses.field(default_factory=set)  # bound by test cells
    test_imports: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> "module[:attr]"
    protected: set[str] = dataclasses.field(default_factory=set)  # instructor names the tests rely on
    student_names: set[str] = dataclasses.field(default_factory=set)  # bound by student code at module level
    student_classes: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # class -> safe class attributes
    free_modules: tuple[str, ...] = FREE_MODULES
    restricted_modules: dict[str, frozenset[str]] = dataclasses.field(default_factory=lambda: dict(RESTRICTED_MODULES))


def _python_source(source: str) -> str:
    """A cell's source as Python: IPython's magics and shell escapes become calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python_source(source))
    except (SyntaxError, ValueError):
        return None


def _tables(table: symtable.SymbolTable) -> Iterable[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _scope_facts(source: str) -> tuple[set[str], set[str], dict[str, str]]:
    """(module-level names bound, global names loaded, imports name -> target) of one cell."""
    code = _python_source(source)
    try:
        top = symtable.symtable(code, "<cell>", "exec")
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set(), set(), {}
    bound: set[str] = set()
    loaded: set[str] = set()
    for table in _tables(top):
        for sym in table.get_symbols():
            name = sym.get_name()
            if table is top:
                if sym.is_assigned() or sym.is_imported():
                    bound.add(name)
                if sym.is_referenced():
                    loaded.add(name)
            else:
                if sym.is_declared_global() and sym.is_assigned():
                    bound.add(name)
                if sym.is_global() and sym.is_referenced():
                    loaded.add(name)
    imports: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    return bound, loaded, imports


def policy_context(cells: Sequence[dict]) -> PolicyContext:
    """Work out the instructor's, the tests' and the student's names from a notebook's cells."""
    ctx = PolicyContext()
    loads_elsewhere: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        role = cell_role(cell)
        bound, loaded, imports = _scope_facts(_source(cell))
        if role == "instructor":
            ctx.instructor_names |= bound
            ctx.instructor_imports.update(imports)
            loads_elsewhere |= loaded - bound
        elif role == "test":
            ctx.test_names |= bound
            ctx.test_imports.update(imports)
            loads_elsewhere |= loaded
        else:
            ctx.student_names |= bound
            tree = _parse(_source(cell))
            for node in (tree.body if tree else []):
                if isinstance(node, ast.ClassDef):
                    ctx.student_classes[node.name] = _class_safe_attributes(node)
    ctx.protected = ctx.instructor_names & loads_elsewhere
    return ctx


def _class_safe_attributes(node: ast.ClassDef) -> set[str]:
    """Attributes that may be looked up on the class itself: values, class and static methods.

    An instance method looked up on the class could be called with any object
    as ``self`` (a module, a library class), and its ``self.x = ...`` would
    then patch that object.
    """
    safe = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(isinstance(d, ast.Name) and d.id in ("classmethod", "staticmethod") for d in item.decorator_list):
                safe.add(item.name)
        elif isinstance(item, (ast.Assign, ast.AnnAssign)):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            safe |= {t.id for t in targets if isinstance(t, ast.Name)}
    return safe


def _module_allowed(name: str, ctx: PolicyContext) -> str | None:
    """None if module ``name`` may be imported, else why not."""
    if any(name == m or name.startswith(m + ".") for m in NOT_IMPORTABLE):
        return f"{name} is part of the grader"
    if name in ctx.restricted_modules:
        return None
    for allowed in ctx.free_modules:
        if name == allowed or name.startswith(allowed + "."):
            return None
    return (f"answers may not import {name} (allowed: {', '.join(ctx.free_modules)}, and "
            f"{', '.join(sorted(ctx.restricted_modules))} for a few functions)")


class _Checker(ast.NodeVisitor):
    """Walks one cell's AST and records every rule it breaks."""

    def __init__(self, ctx: PolicyContext, line_offset: int = 0) -> None:
        self.ctx = ctx
        self.problems: list[Violation] = []
        self.offset = line_offset
        self.restricted_aliases: dict[str, str] = {}  # local alias -> restricted module
        self.method_self: list[str | None] = []  # first parameter of the enclosing method, if any
        self.in_class = 0
        self.imports: dict[str, str] = {}
        self.student_classes: dict[str, set[str]] = {}  # class -> attributes safe to look up on the class

    def flag(self, node: ast.AST, message: str) -> None:
        self.problems.append(Violation(getattr(node, "lineno", 0) + self.offset, message))

    # ---- imports ------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            why = _module_allowed(alias.name, self.ctx)
            if why:
                self.flag(node, why)
            elif alias.name in self.ctx.restricted_modules:
                self.restricted_aliases[alias.asname or alias.name] = alias.name
            elif alias.name.split(".")[0] in self.ctx.restricted_modules and not alias.asname:
                self.restricted_aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.flag(node, "relative imports are not allowed in a notebook")
            return
        module = node.module or ""
        why = _module_allowed(module, self.ctx)
        if why:
            self.flag(node, why)
            return
        for alias in node.names:
            if alias.name == "*":
                self.flag(node, f"`from {module} import *`: import the names you use")
            elif alias.name.startswith("_") and alias.name not in ALLOWED_DUNDERS:
                self.flag(node, f"`{alias.name}` is private to {module}")
            elif module in self.ctx.restricted_modules and alias.name not in self.ctx.restricted_modules[module]:
                self.flag(node, f"answers may use only {', '.join(sorted(self.ctx.restricted_modules[module]))} from {module}")
            elif alias.name in BLOCKED_ATTRIBUTES and alias.name not in _ATTRIBUTES_ALLOWED_ON_OBJECTS:
                self.flag(node, f"answers may not import {alias.name} from {module}")
            elif f"{module}.{alias.name}" in self.ctx.restricted_modules:
                self.restricted_aliases[alias.asname or alias.name] = f"{module}.{alias.name}"

    # ---- names and attributes -----------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name in BLOCKED_NAMES or _IPYTHON_NAME.match(name):
            self.flag(node, f"`{name}` reaches into the interpreter or the notebook's history; answers may not use it")
        elif name.startswith("__") and name not in ("__name__", "__doc__"):
            self.flag(node, f"the name `{name}` is not allowed in an answer")
        elif name in ("getattr", "hasattr", "setattr") and not getattr(node, "_cs_base", False):
            self.flag(node, f"use {name}() only as a direct call with the attribute name written out")
        elif name in self.restricted_aliases and isinstance(node.ctx, ast.Load) and not getattr(node, "_cs_base", False):
            self.flag(node, f"use {self.restricted_aliases[name]} only as `{name}.<function>`")

    def _attribute_problem(self, attr: str, base: ast.AST | None) -> str | None:
        if isinstance(base, ast.Name) and base.id in self.restricted_aliases:
            module = self.restricted_aliases[base.id]
            if attr in self.ctx.restricted_modules.get(module, frozenset()):
                return None
            return f"answers may use only {', '.join(sorted(self.ctx.restricted_modules[module]))} from {module}"
        if attr.startswith("__") and attr.endswith("__"):
            if attr not in ALLOWED_DUNDERS:
                return f"the attribute `{attr}` reaches into Python's internals; answers may not use it"
            return None
        if attr in BLOCKED_ATTRIBUTES:
            if attr in _ATTRIBUTES_ALLOWED_ON_OBJECTS and not (isinstance(base, ast.Name) and base.id in self.restricted_aliases):
                return None
            return f"the attribute `{attr}` is not allowed in an answer (it reaches the interpreter, files or native code)"
        root = base
        while isinstance(root, ast.Attribute):
            root = root.value
        if attr.startswith("_") and isinstance(root, ast.Name) and self._is_module_name(root.id):
            return f"`{attr}` is private to the module; use its public functions"
        return None

    def _is_module_name(self, name: str) -> bool:
        target = self.ctx.instructor_imports.get(name) or self.imports.get(name)
        return bool(target)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        why = self._attribute_problem(node.attr, node.value)
        if why:
            self.flag(node, why)
        elif node.attr not in ("__name__", "__qualname__", "__doc__"):
            base = node.value
            if isinstance(base, ast.Name) and base.id in self.ctx.student_classes \
                    and node.attr not in self.ctx.student_classes[base.id]:
                self.flag(node, f"call {base.id}'s methods on an instance, not on the class")
            elif isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "type":
                self.flag(node, "on type(...), answers may use only __name__")
        if isinstance(node.value, ast.Name):
            node.value._cs_base = True  # type: ignore[attr-defined]
            module = self.restricted_aliases.get(node.value.id)
            if module and f"{module}.{node.attr}" in self.ctx.restricted_modules:
                pass  # os.path.join: checked when the outer attribute is visited
        if (isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name)
                and f"{self.restricted_aliases.get(node.value.value.id)}.{node.value.attr}" in self.ctx.restricted_modules):
            sub = f"{self.restricted_aliases[node.value.value.id]}.{node.value.attr}"
            if node.attr not in self.ctx.restricted_modules[sub]:
                self.flag(node, f"answers may use only {', '.join(sorted(self.ctx.restricted_modules[sub]))} from {sub}")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._check_attribute_target(node)
        self.generic_visit(node)

    def _check_attribute_target(self, node: ast.Attribute) -> None:
        owner = self.method_self[-1] if self.method_self else None
        if isinstance(node.ctx, ast.Del):
            self.flag(node, "answers may not delete attributes")
        elif not (isinstance(node.value, ast.Name) and owner and node.value.id == owner):
            self.flag(node, "answers set attributes only on their own objects, as `self.<name> = ...` in a method "
                            "(to freeze a parameter, call p.requires_grad_(False))")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = node.value
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name) and (root.id in self.ctx.protected or self._is_module_name(root.id)
                                               or root.id in self.restricted_aliases):
                self.flag(node, f"answers may not change `{root.id}`: the tests use it")
        self.generic_visit(node)

    # ---- calls --------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr", "setattr"):
            func._cs_base = True  # type: ignore[attr-defined]
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
                self.flag(node, f"{func.id}() needs the attribute name written out as a string")
            else:
                why = self._attribute_problem(attr.value, node.args[0] if node.args else None)
                if why:
                    self.flag(node, why)
            if func.id == "setattr":
                owner = self.method_self[-1] if self.method_self else None
                target = node.args[0] if node.args else None
                if not (isinstance(target, ast.Name) and owner and target.id == owner):
                    self.flag(node, "setattr() is allowed only on self, in a method")
        elif isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 3:
            self.flag(node, "type() with three arguments builds classes from strings; write a class statement")
        elif isinstance(func, ast.Attribute) and func.attr in ("format", "format_map"):
            template = func.value
            if isinstance(template, ast.Constant) and isinstance(template.value, str):
                try:
                    fields = [f for _, f, _, _ in string.Formatter().parse(template.value) if f]
                except ValueError:
                    fields = []
                if any("." in f or "[" in f for f in fields):
                    self.flag(node, "format fields may not look up attributes or items; use an f-string")
            elif not isinstance(template, ast.JoinedStr):
                self.flag(node, "call .format() only on a string written in the code (or use an f-string)")
        elif self._is_magic_call(node):
            self._check_magic(node)
            for arg in node.args:
                self.visit(arg)
            return
        for keyword in node.keywords:
            if keyword.arg and keyword.arg.startswith("__"):
                self.flag(node, f"the keyword `{keyword.arg}` is not allowed")
        self.generic_visit(node)

    @staticmethod
    def _is_magic_call(node: ast.Call) -> bool:
        func = node.func
        return (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic", "system", "getoutput")
                and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "get_ipython")

    def _check_magic(self, node: ast.Call) -> None:
        func = node.func
        assert isinstance(func, ast.Attribute)
        if func.attr in ("system", "getoutput"):
            self.flag(node, "shell commands (!...) are not run when grading")
            return
        name = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if name not in ALLOWED_MAGICS:
            self.flag(node, f"the magic %{name} is not run when grading (allowed: %{', %'.join(sorted(ALLOWED_MAGICS))})")
            return
        if name in _CODE_MAGICS:
            parts = [a.value for a in node.args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            code = "\n".join(parts)
            code = re.sub(r"^\s*(-\w+(\s+\d+)?\s+)*", "", code)  # %timeit -n 10 -r 3 expr
            inner = _parse(code)
            if inner is not None:
                checker = _Checker(self.ctx, self.offset + node.lineno - 1)
                checker.imports = self.imports
                checker.restricted_aliases = dict(self.restricted_aliases)
                checker.visit(inner)
                self.problems += checker.problems

    # ---- definitions --------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.flag(node, "answers may not define metaclasses")
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("__") \
                    and item.name.endswith("__") and item.name not in ALLOWED_DUNDER_DEFS:
                self.flag(item, f"a class in an answer may not define {item.name} "
                                f"(it would change how the tests compare or convert its objects)")
        self.in_class += 1
        for decorator in node.decorator_list:
            self.visit(decorator)
        for base in node.bases:
            self.visit(base)
        for keyword in node.keywords:
            self.visit(keyword.value)
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._visit_function(item, method=True)
            else:
                self.visit(item)
        self.in_class -= 1

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        if node.returns:
            self.visit(node.returns)
        first = None
        is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
        if method and not is_static:
            positional = node.args.posonlyargs + node.args.args
            first = positional[0].arg if positional else None
            if first:  # rebinding self inside the method would let `self.x = ...` reach anything
                for child in ast.walk(node):
                    if isinstance(child, ast.Name) and child.id == first and isinstance(child.ctx, ast.Store):
                        self.flag(child, f"a method may not assign to `{first}`")
        self.method_self.append(first)
        saved_class = self.in_class
        self.in_class = 0
        for item in node.body:
            self.visit(item)
        self.in_class = saved_class
        self.method_self.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node, method=False)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node, method=False)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.method_self.append(None)
        self.generic_visit(node)
        self.method_self.pop()

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for token in _DUNDER_IN_TEXT.findall(node.value):
                if token not in ALLOWED_DUNDERS:
                    self.flag(node, f"the text {token!r} names one of Python's internals; answers may not use it")
                    break

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if name in self.ctx.protected:
                self.flag(node, f"answers may not rebind `{name}`: the tests use it")


def vet_cell(source: str, ctx: PolicyContext) -> list[Violation]:
    """The rules one student cell breaks (empty: it may run). See the module docstring."""
    code = _python_source(source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []  # the kernel reports the syntax error; nothing of it runs
    ctx = dataclasses.replace(ctx, student_classes=dict(ctx.student_classes))
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            ctx.student_classes[node.name] = _class_safe_attributes(node)
    checker = _Checker(ctx)
    bound, loaded, imports = _scope_facts(source)
    checker.imports = imports
    # pre-scan the module-level imports so that restricted aliases are known before use
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ctx.restricted_modules:
                    checker.restricted_aliases[alias.asname or alias.name] = alias.name
    checker.visit(tree)
    problems = checker.problems
    def line_of(name: str, store: bool) -> int:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store) == store:
                return node.lineno
            if store and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                return node.lineno
            if store and isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    (a.asname or a.name.split(".")[0]) == name for a in node.names):
                return node.lineno
        return 0

    # names it binds at module level
    for name in sorted(bound):
        if name in ctx.protected:
            same_import = name in imports and ctx.instructor_imports.get(name) == imports[name]
            if not same_import:
                problems.append(Violation(line_of(name, True), f"it assigns `{name}`, which the tests use; pick another name"))
        elif name in ctx.test_names and name not in ctx.instructor_names \
                and not (name in imports and ctx.test_imports.get(name) == imports[name]):
            problems.append(Violation(line_of(name, True),
                                      f"it assigns `{name}`, a name the grader's tests use; pick another name"))
    # global names it reads
    known = bound | ctx.student_names | ctx.instructor_names | SAFE_BUILTINS | {"__name__", "__doc__"}
    for name in sorted(loaded - known):
        if name in BLOCKED_NAMES or name.startswith("__") or _IPYTHON_NAME.match(name):
            continue  # already reported by the walk
        if name in ctx.test_names:
            problems.append(Violation(line_of(name, False), f"it reads `{name}`, which only the grader's tests define"))
    problems.sort(key=lambda v: v.line)
    unique: list[Violation] = []
    for problem in problems:
        if not any(p.message == problem.message for p in unique):
            unique.append(problem)
    return unique


def vet_notebook(nb: dict) -> dict[int, list[Violation]]:
    """``{cell index: violations}`` for every student or answer cell that breaks the policy."""
    cells = nb.get("cells", [])
    ctx = policy_context(cells)
    found = {}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and cell_role(cell) in ("answer", "student"):
            problems = vet_cell(_source(cell), ctx)
            if problems:
                found[index] = problems
    return found


# --------------------------------------------------------------------------
# canonical cell order (nbgrader sanitize preprocessor)
# --------------------------------------------------------------------------


class RestoreCellOrder(NbGraderPreprocessor):
    """The notebook that is graded is the release's sequence of cells (see the module docstring).

    Runs in nbgrader's sanitize stage, before ``OverwriteCells``; finds the release
    in ``<course root>/<release_directory>/<assignment>/<notebook>.ipynb``.
    """

    enabled = Bool(True, help="Rebuild the submission on the release's cell order").tag(config=True)

    def _release_notebook(self, resources: dict) -> NotebookNode:
        coursedir = self.config.CourseDirectory
        root = coursedir.root if "root" in coursedir else os.getcwd()
        release = coursedir.release_directory if "release_directory" in coursedir else "release"
        info = resources["nbgrader"]
        path = Path(root) / release / info["assignment"] / f"{info['notebook']}.ipynb"
        return nbformat.read(str(path), as_version=4)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        if not self.enabled:
            return nb, resources
        release = self._release_notebook(resources)
        nb.cells, notes = canonical_cells(release.cells, nb.cells)
        resources.setdefault("cs_course", {})["restored"] = notes
        for note in notes:
            self.log.warning(note)
        return nb, resources


def canonical_cells(release_cells: Sequence[NotebookNode], student_cells: Sequence[NotebookNode]):
    """(cells, notes): the release's cells with the student's answers and extra cells placed in."""
    release_ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release_cells]
    roles = {gid: cell_role(c) for gid, c in zip(release_ids, release_cells) if gid}
    answers: dict[str, NotebookNode] = {}
    extras: dict[str | None, list[NotebookNode]] = {}  # anchor grade_id (None: before the first) -> cells
    notes: list[str] = []
    anchor: str | None = None
    seen_instructor: set[str] = set()
    order: list[str] = []  # the release's cells in the order the student's notebook has them
    for cell in student_cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        role = roles.get(gid) if gid else None
        if role == "answer" and gid not in answers and cell.cell_type == roles_cell_type(release_cells, release_ids, gid):
            # the release's cell (its metadata: the student may have edited that too) with the student's code
            answer = copy.deepcopy(release_cells[release_ids.index(gid)])
            answer.source = cell.source
            answers[gid] = answer
            if _graded_meta(cell) != _graded_meta(answer):
                notes.append(f"the metadata of answer cell {gid} was edited (points, grade or lock); the release's is used")
            order.append(gid)
            anchor = gid
            continue
        if role in ("test", "instructor"):
            if gid in seen_instructor:
                notes.append(f"a second copy of instructor cell {gid} was dropped")
            else:
                original = release_cells[release_ids.index(gid)]
                if _source(cell).strip() != _source(original).strip() or cell.cell_type != original.cell_type:
                    notes.append(f"instructor cell {gid} was edited; the release's version runs")
                elif _graded_meta(cell) != _graded_meta(original):
                    notes.append(f"the metadata of cell {gid} was edited (points, grade or lock); the release's is used")
            seen_instructor.add(gid)
            order.append(gid)
            anchor = gid
            continue
        # the student's own cell, or one that lost (or duplicates) its identity: it runs where it was
        extra = copy.deepcopy(cell)
        if gid:
            why = "duplicates" if role == "answer" else "has an unknown grade_id"
            notes.append(f"a cell that {why} {gid!r} runs as an ordinary cell of the student's")
        if "nbgrader" in extra.metadata:
            del extra.metadata["nbgrader"]
        if extra.cell_type == "code" or extra.cell_type == "markdown":
            extras.setdefault(anchor, []).append(extra)
    if order != [gid for gid in release_ids if gid in set(order)]:
        notes.append("the cells were not in the release's order; they are graded in the release's order")
    cells: list[NotebookNode] = list(extras.get(None, []))
    for gid, cell in zip(release_ids, release_cells):
        role = roles.get(gid) if gid else "student"
        if role == "answer":
            if gid in answers:
                cells.append(answers[gid])
            else:
                notes.append(f"answer cell {gid} is missing from the submission")
        else:
            cells.append(copy.deepcopy(cell))
            if gid and role in ("test", "instructor") and gid not in seen_instructor and cell.cell_type == "code":
                notes.append(f"instructor cell {gid} was missing or changed; the release's version runs")
        if gid:
            cells.extend(extras.get(gid, []))
    seen_ids: set[str] = set()
    for cell in cells:  # a copied cell carries its original's id: give it its own
        if cell.get("id") in seen_ids:
            cell["id"] = f"{cell['id'][:40]}-{len(seen_ids)}"
        seen_ids.add(cell.get("id"))
    return cells, notes


def _graded_meta(cell) -> tuple:
    meta = cell.metadata.get("nbgrader", {})
    return (bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked")),
            float(meta.get("points", 0) or 0))


def roles_cell_type(release_cells, release_ids, gid) -> str:
    return release_cells[release_ids.index(gid)].cell_type


# --------------------------------------------------------------------------
# sandboxed execution (runs in a worker: a local process or a Dask worker)
# --------------------------------------------------------------------------


@dataclasses.dataclass
class ExecutionSettings:
    """Limits of one submission's run (from nbgrader_config.py, see ``SandboxedExecute``)."""

    timeout: int = 60  # seconds per cell before it is interrupted
    interrupt_grace: int = 5  # seconds an interrupted cell gets to stop before the kernel is killed
    submission_timeout: int = 600  # seconds of wall-clock time for the whole notebook
    memory_mb: int = 3072  # address space of the kernel
    cpu_seconds: int = 900  # CPU time of one kernel
    file_mb: int = 64  # largest file the kernel may write
    max_output_bytes: int = 2_000_000  # output kept per cell while it runs
    max_restarts: int = 3  # fresh kernels after a death before the rest is given up
    startup_timeout: int = 120
    user: str | None = "nobody"  # unprivileged user for the kernel when the grader runs as root
    policy: bool = True  # the static policy and the kernel's audit hook
    extra_read_roots: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: dict | None) -> "ExecutionSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _software_roots() -> list[str]:
    """Folders the kernel must read: the interpreter, its libraries, this package, fonts."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.abspath(__file__))}
    for entry in sys.path:
        if entry and os.path.isdir(entry) and ("site-packages" in entry or "dist-packages" in entry
                                               or entry.startswith((sys.base_prefix, sys.prefix))):
            roots.add(entry)
    for extra in ("/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/zoneinfo", "/etc/fonts",
                  "/usr/share/matplotlib"):
        if os.path.isdir(extra):
            roots.add(extra)
    return sorted(roots)


def _shared_cache_dir() -> str:
    """A folder for matplotlib's font cache that every kernel may read (built once per machine)."""
    path = Path(tempfile.gettempdir()) / f"cs-course-cache-{os.getuid()}" / "matplotlib"
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".ready").exists():
        env = dict(os.environ, MPLCONFIGDIR=str(path), MPLBACKEND="Agg")
        import subprocess

        subprocess.run([sys.executable, "-c", "import matplotlib.pyplot as p; p.figure()"], env=env,
                       capture_output=True, timeout=300)
        (path / ".ready").touch()
    return str(path)


def _instructor_imports(nb: NotebookNode) -> list[str]:
    """Modules that the instructor's cells import (loaded before the student's code runs)."""
    modules: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell_role(cell) not in ("instructor", "test"):
            continue
        tree = _parse(_source(cell))
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.append(node.module)
    return sorted(set(modules))


from jupyter_client.manager import AsyncKernelManager as _AsyncKernelManager


class SandboxKernelManager(_AsyncKernelManager):  # type: ignore[misc,valid-type]
    """Starts ``python -m cs_utils.sandbox`` instead of the plain IPython kernel."""

    sandbox_settings = Dict({}, help="settings handed to cs_utils.sandbox (JSON)")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [sys.executable, "-m", "cs_utils.sandbox", "-f", os.path.realpath(self.connection_file),
                "--settings", json.dumps(self.sandbox_settings), *(extra_arguments or [])]


from jupyter_core.utils import run_sync
from nbclient import NotebookClient as _NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError


class _KernelLost(Exception):
    """The kernel died, or had to be killed, while a cell ran."""


class SandboxClient(_NotebookClient):  # type: ignore[misc,valid-type]
    """nbclient's executor with the grading rules (see the module docstring, step 3)."""

    def __init__(self, nb, settings: ExecutionSettings, private: Path, **kwargs):
        self.settings = settings
        self.private = private
        super().__init__(nb, timeout=settings.timeout, interrupt_on_timeout=True, allow_errors=True,
                         raise_on_iopub_timeout=True, iopub_timeout=settings.interrupt_grace,
                         startup_timeout=settings.startup_timeout, kernel_name="python3",
                         kernel_manager_class=SandboxKernelManager, record_timing=False,
                         error_on_timeout={"ename": "CellTimeoutError",
                                           "evalue": f"the cell ran longer than {settings.timeout} s and was interrupted",
                                           "traceback": []},
                         **kwargs)
        self.report: dict[str, Any] = {"cells": {}, "restarts": 0, "tampering": [], "rejected": {}}
        self._output_bytes = 0
        self._output_truncated = False

    # ---- outputs ------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(json.dumps(content.get("data", content.get("text", ""))))
        if msg["msg_type"] in ("stream", "display_data", "update_display_data"):
            self._output_bytes += size
            if self._output_bytes > self.settings.max_output_bytes:
                self._output_truncated = True
                return None
        return super().output(outs, msg, display_id, cell_index)

    def on_cell_executed(self, **kwargs):  # as nbgrader's Execute: a timeout leaves an error in the cell
        cell, reply = kwargs["cell"], kwargs["execute_reply"]
        if reply and reply["content"]["status"] == "error":
            ename = reply["content"].get("ename")
            if not any(o.get("output_type") == "error" and o.get("ename") == ename for o in cell.outputs):
                cell.outputs.append(_error_output(ename or "Error", reply["content"].get("evalue", "")))

    def note(self, index: int, text: str) -> None:
        self.report["cells"].setdefault(str(index), []).append(text)

    # ---- the kernel ---------------------------------------------------
    def kernel_settings(self) -> dict:
        user = _usable_user(self.settings.user)
        return {
            "memory_mb": self.settings.memory_mb,
            "cpu_seconds": self.settings.cpu_seconds,
            "file_mb": self.settings.file_mb,
            "uid_gid": list(user) if user else None,
            "preload": self.preload,
            "policy": self.settings.policy,
            "read_roots": _software_roots() + [self.mpl_cache, *self.settings.extra_read_roots],
            "write_roots": [str(self.private)],
        }

    def kernel_env(self) -> dict:
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
        return {
            **keep,
            "HOME": str(self.private / "home"),
            "TMPDIR": str(self.private / "tmp"),
            "MPLCONFIGDIR": self.mpl_cache,
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "IPYTHONDIR": str(self.private / "home" / ".ipython"),
            "JUPYTER_RUNTIME_DIR": str(self.private / "runtime"),
            "NBGRADER_EXECUTION": "autograde",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.sandbox_settings = self.kernel_settings()
        km.connection_file = str(self.private / "runtime" / "kernel.json")
        return km

    async def _start(self) -> None:
        self.km = self.create_kernel_manager()
        # the kernel's own messages go to a log in its private folder, not to the TA's terminal
        self._log = self.private / f"kernel-{self.report['restarts']}.log"
        log = open(self._log, "ab")
        try:
            await self.async_start_new_kernel(cwd=str(self.private / "work"), env=self.kernel_env(),
                                              stdout=log, stderr=log)
        finally:
            log.close()
        await self.async_start_new_kernel_client()
        msg_id = await _maybe_await(self.kc.kernel_info())
        await self.async_wait_for_reply(msg_id)

    async def _stop(self) -> int | None:
        """Stop the kernel; its exit status (negative: the signal that killed it), if known."""
        status = None
        if self.km is not None:
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            try:
                if await _maybe_await(self.km.is_alive()):
                    await _maybe_await(self.km.shutdown_kernel(now=True))
            except Exception:
                pass
            if process is not None:
                status = process.poll()
            try:
                await _maybe_await(self.km.cleanup_resources())
            except Exception:
                pass
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:
                pass
        self.kc = None
        self.km = None
        return status

    async def _exit_status(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None) if self.km else None
        if process is None:
            return None
        for _ in range(20):
            status = process.poll()
            if status is not None:
                return status
            await asyncio.sleep(0.05)
        return None

    async def _silent(self, expression: str, timeout: float = 30) -> Any:
        """Evaluate a referee expression in the kernel without touching the notebook."""
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"r": expression})
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _KernelLost("the kernel did not answer the grader")
            try:
                msg = await _maybe_await(self.kc.shell_channel.get_msg(timeout=min(remaining, 1)))
            except Exception:
                if not await _maybe_await(self.kc.is_alive()):
                    raise _KernelLost("the kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            result = msg["content"].get("user_expressions", {}).get("r", {})
            if result.get("status") != "ok":
                return None
            text = result.get("data", {}).get("text/plain", "None")
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None

    async def _run_cell(self, cell, index: int) -> None:
        """Execute one cell; raise _KernelLost (with the reason) if the kernel did not survive it."""
        self._output_bytes = 0
        self._output_truncated = False
        limit = self.settings.timeout + 2 * self.settings.interrupt_grace + 10
        try:
            await asyncio.wait_for(self.async_execute_cell(cell, index, store_history=True), limit)
        except (DeadKernelError, asyncio.CancelledError):
            status = await self._exit_status()
            raise _KernelLost(_death_reason(status, self.settings) + self._log_tail()) from None
        except (CellTimeoutError, asyncio.TimeoutError):
            raise _KernelLost(f"the cell ran longer than {self.settings.timeout} s and did not stop when "
                              f"interrupted; the grader stopped the kernel") from None
        if self._output_truncated:
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout",
                text=f"\n... output truncated by the grader: more than {self.settings.max_output_bytes:,} bytes\n"))
        if not await _maybe_await(self.kc.is_alive()):
            status = await self._exit_status()
            raise _KernelLost(_death_reason(status, self.settings) + self._log_tail())

    def _log_tail(self) -> str:
        """The last line the kernel wrote to its log that says something (a fatal error), if any."""
        try:
            lines = self._log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        useful = [ln.strip() for ln in lines if ln.strip() and "without encryption" not in ln]
        return f" (its last words: {useful[-1][:200]})" if useful else ""

    # ---- the notebook -------------------------------------------------
    async def async_execute(self, reset_kc: bool = False, **kwargs: Any) -> NotebookNode:
        cells = self.nb.cells
        ctx = policy_context(cells)
        self.preload = _instructor_imports(self.nb)
        self.mpl_cache = _shared_cache_dir()
        rejected = vet_notebook(self.nb) if self.settings.policy else {}
        self.report["rejected"] = {str(i): [str(v) for v in vs] for i, vs in rejected.items()}
        deadline = time.monotonic() + self.settings.submission_timeout
        ran: list[int] = []  # cells run in the current kernel, replayed after a restart
        self._protected = protected = sorted(ctx.instructor_names)
        started = False
        try:
            await self._start()
            started = True
            for index, cell in enumerate(cells):
                if cell.cell_type != "code":
                    continue
                cell.outputs = []
                cell.execution_count = None
                if not _source(cell).strip():
                    continue
                role = cell_role(cell)
                if index in rejected:
                    lines = "\n".join(f"  {v}" for v in rejected[index])
                    cell.outputs = [_error_output(
                        "NotRunByGrader",
                        f"this cell was not run: it breaks the grading rules\n{lines}")]
                    self.note(index, "not run (grading rules): " + "; ".join(map(str, rejected[index])))
                    continue
                if time.monotonic() > deadline:
                    cell.outputs = [_error_output("NotRunByGrader", f"not run: the submission used up its "
                                                                     f"{self.settings.submission_timeout} s")]
                    self.note(index, "not run: time budget used up")
                    continue
                if self.km is None:
                    cell.outputs = [_error_output("NotRunByGrader", "not run: the kernel died too often")]
                    continue
                try:
                    if role in ("test", "instructor"):
                        changed = await self._silent("__cs_referee__.verify()")
                        if changed:
                            self.report["tampering"].append({"before_cell": index, "restored": changed})
                    await self._run_cell(cell, index)
                    self._note_outcome(cell, index, role)
                    if role in ("test", "instructor"):
                        await self._silent(f"__cs_referee__.snapshot_names({protected!r})")
                    if role in ("answer", "student") and any(
                            o.get("output_type") == "error" and o.get("ename") == "MemoryError" for o in cell.outputs):
                        raise _KernelLost("the cell ran out of memory (the grading kernel may use "
                                          f"{self.settings.memory_mb} MB)")
                    ran.append(index)
                except _KernelLost as lost:
                    reason = str(lost)
                    cell.outputs.append(_error_output("KernelDiedError", reason))
                    self.note(index, reason)
                    await self._recover(ran, deadline)
        finally:
            if started or self.km is not None:
                await self._stop()
        return self.nb

    def _note_outcome(self, cell, index: int, role: str) -> None:
        """What the TA should hear about a cell that ran: a timeout, the sandbox refusing something,
        an answer that ran a reference implementation, output cut short."""
        for output in cell.outputs:
            if output.get("output_type") != "error":
                continue
            first_line = (str(output.get("evalue", "")).splitlines() or [""])[0]
            if output.get("ename") == "CellTimeoutError":
                self.note(index, f"ran longer than {self.settings.timeout} s and was interrupted")
            elif output.get("ename") == "PolicyViolation" and role in ("answer", "student"):
                self.note(index, "the sandbox refused: " + first_line[:200])
            elif output.get("ename") == "ReferenceUsedError" and role == "test":
                self.note(index, "no credit, the answer ran a reference implementation: "
                                 + first_line.split(": reference implementations")[0][:200])
        if self._output_truncated:
            self.note(index, f"printed more than {self.settings.max_output_bytes:,} bytes; the rest was dropped")

    async def _recover(self, ran: list[int], deadline: float) -> None:
        """A fresh kernel with the cells that had run replayed (their outputs are not kept).

        A replayed cell that kills the new kernel too is left out; after
        ``max_restarts`` fresh kernels the rest of the notebook is not run.
        """
        await self._stop()
        while self.report["restarts"] < self.settings.max_restarts:
            self.report["restarts"] += 1
            current = None
            try:
                await self._start()
                replayed = []
                for index in list(ran):
                    if time.monotonic() > deadline:
                        break
                    current = index
                    scratch = copy.deepcopy(self.nb.cells[index])
                    await self._run_cell(scratch, index)
                    if cell_role(scratch) in ("test", "instructor"):
                        await self._silent(f"__cs_referee__.snapshot_names({self._protected!r})")
                    replayed.append(index)
                ran[:] = replayed
                return
            except _KernelLost as lost:
                if current is not None:
                    self.note(current, f"left out when replaying after a restart: {lost}")
                    ran.remove(current)
                await self._stop()
        self.km = None


    execute = run_sync(async_execute)


async def _maybe_await(value):
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _death_reason(status: int | None, settings: ExecutionSettings) -> str:
    if status is None:
        return "the kernel died"
    if status < 0:
        sig = -status
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig == signal.SIGXCPU:
            return f"the kernel used up its {settings.cpu_seconds} s of CPU time and was stopped ({name})"
        if sig == signal.SIGKILL:
            return "the kernel was killed (SIGKILL): it used up its CPU time, or memory, or was killed by its own code"
        return f"the kernel was killed by {name}"
    return f"the kernel exited (status {status}): the code called exit(), sys.exit() in a thread, or os._exit()"


def _usable_user(name: str | None):
    from cs_utils.sandbox import usable_user

    return usable_user(name)


def _prepare_private(files: dict[str, bytes], user: tuple[int, int] | None) -> Path:
    private = Path(tempfile.mkdtemp(prefix="cs-grade-"))
    for sub in ("work", "home", "tmp", "runtime"):
        (private / sub).mkdir()
    for rel, data in files.items():
        target = (private / "work" / rel).resolve()
        if not str(target).startswith(str(private / "work")):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if user:
        for path in [private, *private.rglob("*")]:
            os.chown(path, user[0], user[1])
    os.chmod(private, 0o700)
    return private


def execute_notebook(nb: NotebookNode, settings: ExecutionSettings | dict | None = None,
                     files: dict[str, bytes] | None = None) -> tuple[NotebookNode, dict]:
    """Run a canonical notebook in the sandbox; return it executed, and the report."""
    settings = settings if isinstance(settings, ExecutionSettings) else ExecutionSettings.from_dict(settings)
    user = _usable_user(settings.user)
    private = _prepare_private(files or {}, user)
    started = time.perf_counter()
    try:
        client = SandboxClient(nb, settings, private)
        try:
            client.execute()
        except Exception as exc:  # the kernel would not start, or the client itself failed
            client.report["error"] = f"{type(exc).__name__}: {exc}"
        report = client.report
    finally:
        shutil.rmtree(private, ignore_errors=True)
    report["seconds"] = time.perf_counter() - started
    report["isolation"] = "unprivileged user" if user else "audit policy and limits (running as " \
        + ("root; the unprivileged user cannot run this interpreter" if os.geteuid() == 0 else "this user") + ")"
    return nb, report


def execute_submission(task: dict) -> dict:
    """Worker entry point: ``{"notebooks": {name: json}, "files": {rel: b64}, "settings": {...}}``
    -> ``{"notebooks": {name: json}, "reports": {name: report}, "seconds": s}``. Plain data in and
    out, so that it runs in any process pool or on any Dask worker."""
    started = time.perf_counter()
    cpu_before = _children_cpu()
    files = {rel: base64.b64decode(data) for rel, data in task.get("files", {}).items()}
    out: dict[str, Any] = {"notebooks": {}, "reports": {}, "student": task.get("student")}
    for name, text in task["notebooks"].items():
        nb = nbformat.reads(text, as_version=4)
        executed, report = execute_notebook(nb, task.get("settings"), files)
        out["notebooks"][name] = nbformat.writes(executed)
        out["reports"][name] = report
    out["seconds"] = time.perf_counter() - started
    out["worker"] = f"{__import__('socket').gethostname()}:{os.getpid()}"
    out["cpu_seconds"] = _children_cpu() - cpu_before  # this worker's and its kernels' CPU time for the task
    return out


def _children_cpu() -> float:
    """CPU seconds used so far by this process's finished children (the kernels) and itself."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------
# replay in nbgrader's autograde stage
# --------------------------------------------------------------------------


class ReplayExecute(NbGraderPreprocessor):
    """nbgrader's Execute, with the outputs of a sandboxed run copied in instead of a kernel.

    ``executed_directory/<student>/<assignment>/<notebook>.ipynb`` holds the
    notebook that :func:`execute_notebook` ran; it must have the same cells.
    """

    executed_directory = Unicode("", help="where the executed notebooks are").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        path = Path(self.executed_directory) / info["student"] / info["assignment"] / f"{info['notebook']}.ipynb"
        executed = nbformat.read(str(path), as_version=4)
        if [_source(c) for c in executed.cells] != [_source(c) for c in nb.cells]:
            raise RuntimeError(f"the executed notebook {path} does not match the submission")
        for cell, done in zip(nb.cells, executed.cells):
            if cell.cell_type == "code":
                cell.outputs = done.get("outputs", [])
                cell.execution_count = done.get("execution_count")
                ran = cell.execution_count is not None or any(o.get("output_type") == "error" for o in cell.outputs)
                if cell_role(cell) == "test" and _source(cell).strip() and not ran:
                    # a test with no record of running never earns points
                    cell.outputs.append(_error_output("NotRunByGrader", "the grader has no record of this test running"))
        nb.metadata["language_info"] = executed.metadata.get("language_info", nb.metadata.get("language_info", {}))
        return nb, resources


class SandboxedExecute(NbGraderPreprocessor):
    """Configuration of the sandboxed run (``c.SandboxedExecute.*`` in nbgrader_config.py).

    ``cs-course grade`` reads these traits into :class:`ExecutionSettings`; the
    per-cell timeout is nbgrader's own ``c.Execute.timeout``. As a preprocessor
    it executes the notebook in the sandbox in-process, so that plain
    ``nbgrader autograde`` with this course's configuration is sandboxed too.
    """

    submission_timeout = Integer(600, help="seconds of wall-clock time for a whole notebook").tag(config=True)
    memory_mb = Integer(3072, help="address space of the grading kernel (MB)").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds of a grading kernel").tag(config=True)
    file_mb = Integer(64, help="largest file the grading kernel may write (MB)").tag(config=True)
    max_output_bytes = Integer(2_000_000, help="output kept per cell while it runs").tag(config=True)
    max_restarts = Integer(3, help="fresh kernels after a kernel death").tag(config=True)
    interrupt_grace = Integer(5, help="seconds an interrupted cell gets before the kernel is killed").tag(config=True)
    user = Unicode("nobody", allow_none=True, help="unprivileged user for the kernel when grading as root").tag(config=True)
    policy = Bool(True, help="enforce the static policy and the kernel's audit hook").tag(config=True)
    extra_read_roots = List(Unicode(), [], help="more folders the kernel may read").tag(config=True)

    def settings(self) -> ExecutionSettings:
        timeout = 60
        execute = self.config.Execute if "Execute" in self.config else {}
        if "timeout" in execute and execute["timeout"]:
            timeout = int(execute["timeout"])
        return ExecutionSettings(
            timeout=timeout, interrupt_grace=self.interrupt_grace, submission_timeout=self.submission_timeout,
            memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds, file_mb=self.file_mb,
            max_output_bytes=self.max_output_bytes, max_restarts=self.max_restarts, user=self.user,
            policy=self.policy, extra_read_roots=tuple(self.extra_read_roots))

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        folder = resources.get("metadata", {}).get("path") or "."
        files = {}
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.suffix != ".ipynb" and path.stat().st_size < 20 * 2**20:
                files[str(path.relative_to(folder))] = path.read_bytes()
        nb, report = execute_notebook(nb, self.settings(), files)
        resources.setdefault("cs_course", {})["execution"] = report
        return nb, resources
