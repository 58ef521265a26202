"""House rules a reviewer would otherwise check by hand: small modules, keyword-only long signatures."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "memaudit"
MAX_LINES = 250


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _is_cli_command(function: ast.FunctionDef) -> bool:
    """Typer commands declare options as parameters and are only ever called by name, by Typer."""
    defaults = function.args.defaults + function.args.kw_defaults
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in ("Option", "Argument")
        for d in defaults
        if d is not None
    )


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_functions_with_more_than_three_parameters_take_them_by_keyword():
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_cli_command(node):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(positional) > 3:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert offenders == []


def test_the_checker_sees_a_long_positional_signature():
    tree = ast.parse("def f(a, b, c, d):\n    pass\n")
    function = tree.body[0]
    assert len(function.args.args) == 4 and not _is_cli_command(function)
