"""CEL of MeshPolicy rules, compiled and evaluated in Python (layer ``api``, pure).

The operator audits existing products with the same expressions the API server enforces at
admission. Both sides share standard CEL (``has``, ``all``, ``exists``, ``size``, ``in``,
``matches``, ``startsWith``, ...) and, from the Kubernetes strings library, ``split``,
``lowerAscii``, ``upperAscii``, ``trim``, ``replace`` and ``join``; a rule that uses more of the
Kubernetes libraries is enforced at admission and reported as not evaluable by the audit.
``oldObject`` is null in an audit, as on create.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

ACTIVATION_NOTE = " (in activation"  # where celpy's messages start dumping its whole state


class CelError(ValueError):
    """An expression that cannot be compiled or evaluated."""


class CelCompileError(CelError):
    """The expression is not valid CEL; the message points at the place."""


class CelEvaluationError(CelError):
    """The expression could not be evaluated for this object (a missing field, a function
    that does not apply, a result that is not of the wanted type)."""


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in text.split(separator)])


def _join(items: celtypes.ListType, separator: str = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(item) for item in items))


def _replace(
    text: celtypes.StringType, old: celtypes.StringType, new: celtypes.StringType
) -> celtypes.StringType:
    return celtypes.StringType(text.replace(old, new))


KUBERNETES_STRINGS: dict[str, Callable[..., Any]] = {
    "split": _split,
    "lowerAscii": lambda text: celtypes.StringType(text.lower()),
    "upperAscii": lambda text: celtypes.StringType(text.upper()),
    "trim": lambda text: celtypes.StringType(text.strip()),
    "replace": _replace,
    "join": _join,
}
_ENVIRONMENT = celpy.Environment()


def _short(error: Exception) -> str:
    message = str(error.args[0]) if error.args else str(error)
    return message.split(ACTIVATION_NOTE, 1)[0]


@dataclass(frozen=True)
class CelProgram:
    """One compiled expression."""

    source: str
    runner: Any  # celpy.Runner

    def evaluate(self, variables: dict[str, Any]) -> Any:
        """The result for ``variables`` (JSON-like values); CelEvaluationError otherwise."""
        activation = {name: json_to_cel(value) for name, value in variables.items()}
        try:
            result = self.runner.evaluate(activation)
        except CELEvalError as error:
            raise CelEvaluationError(_short(error)) from None
        except (TypeError, ValueError, KeyError, IndexError) as error:
            raise CelEvaluationError(str(error)) from None
        if isinstance(result, CELEvalError):
            raise CelEvaluationError(_short(result))
        return result

    def holds(self, variables: dict[str, Any]) -> bool:
        """Whether a rule holds: its result must be a bool."""
        result = self.evaluate(variables)
        if not isinstance(result, celtypes.BoolType | bool):
            raise CelEvaluationError(f"the expression gives {type(result).__name__}, not a bool")
        return bool(result)

    def text(self, variables: dict[str, Any]) -> str:
        """A message expression's result: it must be a string."""
        result = self.evaluate(variables)
        if not isinstance(result, str):  # celpy's StringType, or a str from a concatenation
            raise CelEvaluationError(
                f"the message expression gives {type(result).__name__}, not a string"
            )
        return str(result)


def compile_cel(source: str) -> CelProgram:
    """Compile ``source``; CelCompileError with the parser's message and position otherwise."""
    try:
        tree = _ENVIRONMENT.compile(source)
    except CELParseError as error:
        line, column = getattr(error, "line", None), getattr(error, "column", None)
        where = f" at line {line}, column {column}" if line and column else ""
        shown = source if len(source) <= 200 else source[:200] + "..."
        raise CelCompileError(f"syntax error{where}: {shown}") from None
    return CelProgram(source, _ENVIRONMENT.program(tree, functions=KUBERNETES_STRINGS))
