"""The calculator: arithmetic found in a question, computed exactly before the model answers.

Only numbers, + - * / // % ** (also ^, x, ×, ÷ and the words plus, minus, times, divided by),
parentheses and a short list of math functions are evaluated, by `simpleeval` after the
expression's syntax tree was checked to hold nothing else: no names but pi and e, no attribute
access, no strings, no comprehensions. Expressions are capped in length and exponents in size, so
`9**9**9` is refused instead of computed.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistants.tools import ToolStep
from runtime.errors import ArchivistError

MAX_EXPRESSION = 200  # characters
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e300

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "min": min,
    "max": max,
}
NAMES = {"pi": math.pi, "e": math.e}


class CalculatorError(ArchivistError):
    """An expression the calculator refuses or cannot compute."""


def _power(a: float, b: float) -> float:
    if abs(b) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {b:g} is over the calculator's limit of {MAX_EXPONENT}")
    if abs(a) > 1 and abs(b) * math.log10(abs(a)) > 300:
        raise CalculatorError(f"{a:g} ** {b:g} is over the calculator's limit of 1e300")
    value: float = a**b
    return value


_ALLOWED = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


def _check(tree: ast.AST, expression: str) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise CalculatorError(f"{expression[:60]!r}: {type(node).__name__} is not arithmetic")
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, (int, float))
        ):
            raise CalculatorError(f"{expression[:60]!r}: only numbers can be computed")
        if isinstance(node, ast.Name) and node.id not in NAMES and node.id not in FUNCTIONS:
            raise CalculatorError(
                f"{expression[:60]!r}: unknown name {node.id!r}; the calculator knows numbers, pi, e and "
                + ", ".join(sorted(FUNCTIONS))
            )
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS):
            raise CalculatorError(
                f"{expression[:60]!r}: only the math functions {', '.join(sorted(FUNCTIONS))} can be called"
            )
        if isinstance(node, ast.Call) and node.keywords:
            raise CalculatorError(f"{expression[:60]!r}: functions take plain numbers")


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression; CalculatorError for anything else."""
    from simpleeval import SimpleEval

    if len(expression) > MAX_EXPRESSION:
        raise CalculatorError(
            f"expression is {len(expression):,} characters; the calculator's limit is {MAX_EXPRESSION}"
        )
    source = normalize(expression)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"{expression[:60]!r} is not an arithmetic expression ({exc.msg})") from exc
    _check(tree, expression)
    ops = {
        ast.Add: operator.add,
        ast.Sub: operator.sub,
        ast.Mult: operator.mul,
        ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv,
        ast.Mod: operator.mod,
        ast.Pow: _power,
        ast.USub: operator.neg,
        ast.UAdd: operator.pos,
    }
    evaluator = SimpleEval(operators=ops, functions=FUNCTIONS, names=NAMES)
    try:
        value = evaluator.eval(source)
    except CalculatorError:
        raise
    except ZeroDivisionError as exc:
        raise CalculatorError(f"{expression[:60]!r}: division by zero") from exc
    except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
        raise CalculatorError(f"{expression[:60]!r}: {exc}") from exc
    except Exception as exc:  # simpleeval's own refusals (names, functions, limits)
        raise CalculatorError(f"{expression[:60]!r}: {exc}") from exc
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CalculatorError(f"{expression[:60]!r} did not give a number")
    if isinstance(value, float) and (math.isnan(value) or abs(value) > MAX_MAGNITUDE):
        raise CalculatorError(f"{expression[:60]!r}: the result is not a finite number")
    if isinstance(value, int) and abs(value) > 10**300:
        raise CalculatorError(f"{expression[:60]!r}: the result is over the calculator's limit of 1e300")
    return value


_WORDS = [
    (re.compile(r"\bdivided\s+by\b", re.I), "/"),
    (re.compile(r"\bmultiplied\s+by\b", re.I), "*"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.I), "**"),
]


def normalize(expression: str) -> str:
    """Python syntax for what people write: 3,840 -> 3840, ^ -> **, × -> *, ÷ -> /, 'times' -> *."""
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expression)
    for pattern, op in _WORDS:
        s = pattern.sub(op, s)
    s = s.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    s = re.sub(r"(?<=\d)\s*[xX]\s*(?=[\d(])", "*", s)
    return s.strip()


def show(value: float | int) -> str:
    """12345.5 -> '12,345.5'; whole floats without '.0'; at most 12 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.12g}"


@dataclass(frozen=True)
class Found:
    text: str  # as written in the question
    expression: str  # what is evaluated


_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_PERCENT = re.compile(rf"({_NUM})\s*(?:%|percent)\s+of\s+({_NUM})", re.I)
_FUNC = "|".join(sorted(FUNCTIONS, key=len, reverse=True))
_WORD_OPS = r"divided\s+by|multiplied\s+by|times|plus|minus|to\s+the\s+power\s+of"
_TOKEN = rf"(?:{_NUM}|\b(?:{_FUNC})\b|\bpi\b|(?:{_WORD_OPS})\b|\*\*|[-+*/^×÷−()%]|(?<=\d)\s*[xX](?=\s*[\d(]))"
_RUN = re.compile(rf"{_TOKEN}(?:\s*{_TOKEN})*", re.I)
_OPERATOR = re.compile(rf"(?:{_NUM}|\))\s*(?:\*\*|[-+*/^×÷−%x]|{_WORD_OPS})\s*[\d(a-z]|\b(?:{_FUNC})\s*\(", re.I)


def find(text: str) -> list[Found]:
    """The arithmetic written in `text`: "12.5% of 3,840", "(3 + 4) * 2", "sqrt(2)", "7 times 6".
    A lone number, a date (2024-05-01) or a version (3.11) is not arithmetic."""
    out: list[Found] = []
    taken: list[tuple[int, int]] = []
    for m in _PERCENT.finditer(text):
        a, b = m.group(1).replace(",", ""), m.group(2).replace(",", "")
        out.append(Found(m.group(0), f"{a} / 100 * {b}"))
        taken.append(m.span())
    for m in _RUN.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        run = m.group(0).strip()
        while run and run[-1] in "-+*/^×÷−(%":
            run = run[:-1].rstrip()
        while run.count("(") > run.count(")") and run.startswith("("):
            run = run[1:].lstrip()
        if not run or not _OPERATOR.search(run) or re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", run):
            continue
        if run.count("(") != run.count(")") or re.fullmatch(r"\d+-\d+", run):
            continue  # unbalanced, or a range such as pages 12-13
        try:
            ast.parse(normalize(run), mode="eval")
        except SyntaxError:
            continue  # code (R's %% or Python's a // b with names), not arithmetic
        out.append(Found(run, run))
    return out


def calculate(text: str, limit: int = 5) -> list[ToolStep]:
    """A step per piece of arithmetic in `text` (at most `limit`), each computed or refused with why."""
    steps: list[ToolStep] = []
    for f in find(text)[:limit]:
        t0 = time.perf_counter()
        try:
            value = show(evaluate(f.expression))
            steps.append(
                ToolStep("calculator", f.text, value, True, f"{f.text} = {value}", seconds=time.perf_counter() - t0)
            )
        except CalculatorError as exc:
            steps.append(
                ToolStep("calculator", f.text, str(exc), False, f"{f.text}: {exc}", seconds=time.perf_counter() - t0)
            )
    return steps
