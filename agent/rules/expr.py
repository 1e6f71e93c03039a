"""A small, safe expression language for rule conditions, compiled once per load.

Syntax is a subset of Python's expressions: ``and or not``, comparisons (chained
too), ``in`` / ``not in``, ``+ - * / %``, ``x if c else y``, list literals of
constants, ``null``/``true``/``false`` and a few functions (``FUNCTIONS``). Names
are only the scope's variables and their fields (``agent.rules.fields``); every
node is type-checked against that table. There are no loops, comprehensions,
lambdas, attribute walks beyond the table, imports or arbitrary calls, so run time
is bounded by the expression's size, which is capped.

We measured the maintained libraries first (CEL via ``common-expression-language``
and ``cel-python``, ``rule-engine``, ``simpleeval``): each costs 4-200 µs per
evaluation because every call builds a context, while the benchmark needs ~0.3 µs
(a million responses times several rules in seconds). So the checked tree is
turned into Python source made only of accessors from our table, constants and
helper calls, and compiled with no builtins: ~0.15 µs per evaluation.

Null semantics: ordering comparisons, ``in``, arithmetic and functions on a
``null`` give ``null``/false instead of raising, so ``account.nps >= 50`` is false
for an account without feedback.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.core.durations import DurationError, parse_duration
from agent.core.history import PORTFOLIO_KEYS
from agent.rules.fields import SCOPE_VARIABLES, TIER_KEYS, VARIABLES, Field, Kind, Scope
from agent.rules.history import RuleHistory

__all__ = [
    "FUNCTIONS",
    "HISTORY_FUNCTIONS",
    "Change",
    "CompiledExpr",
    "ExprError",
    "Type",
    "compile_expr",
]

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_LIST = 200
MAX_STRING = 1000

#: ``fn(r, a, p, now)`` or ``fn(r, a, p, now, h)`` with ``h`` the evaluation's history.
Evaluator = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Type:
    kind: Kind
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.kind}{' or null' if self.optional and self.kind != 'null' else ''}"


class ExprError(ValueError):
    """A compile error with its position inside the expression (1-based line/column)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Change:
    """A change function's figure, for showing before -> after (``rules test``)."""

    label: str
    before: Evaluator
    after: Evaluator


@dataclass(frozen=True, slots=True)
class CompiledExpr:
    """A checked, compiled expression: ``fn(r, a, p, now)`` or ``fn(r, a, p, now, h)``."""

    text: str
    type: Type
    fn: Evaluator
    #: Variables the expression reads (e.g. ``{"account"}``).
    variables: frozenset[str]
    #: The figures it compares with their past (``previous``, ``delta``, ...).
    changes: tuple[Change, ...] = ()
    #: Whether its value can change with the clock alone (``hours_since``, ``since``,
    #: ``previous(x, "30d")``): the inputs unchanged do not give the same value later.
    reads_clock: bool = False
    #: The account figures its change functions read from the history.
    history_keys: frozenset[str] = frozenset()


# ---- runtime helpers: every one tolerates None ---------------------------------------


def _lt(x: Any, y: Any) -> bool:
    return x is not None and y is not None and x < y


def _le(x: Any, y: Any) -> bool:
    return x is not None and y is not None and x <= y


def _gt(x: Any, y: Any) -> bool:
    return x is not None and y is not None and x > y


def _ge(x: Any, y: Any) -> bool:
    return x is not None and y is not None and x >= y


def _in(x: Any, y: Any) -> bool:
    return x is not None and y is not None and x in y


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(x: Any, y: Any) -> Any:
        return None if x is None or y is None else op(x, y)

    return run


def _div(x: Any, y: Any) -> Any:
    return None if x is None or y is None or y == 0 else x / y


def _mod(x: Any, y: Any) -> Any:
    return None if x is None or y is None or y == 0 else x % y


def _neg(x: Any) -> Any:
    return None if x is None else -x


def _unary(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        return None if x is None else fn(x)

    return run


def _round(x: Any, digits: Any = 0) -> Any:
    return None if x is None else round(x, int(digits))


def _extreme(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*xs: Any) -> Any:
        values = [x for x in xs if x is not None]
        return fn(values) if values else None

    return run


def _hours_since(now: datetime, t: datetime | None) -> float | None:
    return None if t is None else (now - t).total_seconds() / 3600


def _days_since(now: datetime, t: datetime | None) -> float | None:
    return None if t is None else (now - t).total_seconds() / 86_400


_NO_HISTORY = RuleHistory(None)


def _on(facts: Any, read: Callable[[Any], Any]) -> Any:
    return None if facts is None else read(facts)


def _prev_answer(h: RuleHistory | None, r: Any) -> Any:
    return None if h is None else h.previous_answer(r)


def _differs(before: Any, after: Any, had_before: bool) -> bool:
    return had_before and before != after


_HELPERS: dict[str, Any] = {
    "_NOH": _NO_HISTORY,
    "_on": _on,
    "_prev_answer": _prev_answer,
    "_differs": _differs,
    "_lt": _lt,
    "_le": _le,
    "_gt": _gt,
    "_ge": _ge,
    "_in": _in,
    "_add": _arith(lambda x, y: x + y),
    "_sub": _arith(lambda x, y: x - y),
    "_mul": _arith(lambda x, y: x * y),
    "_div": _div,
    "_mod": _mod,
    "_neg": _neg,
    "_len": _unary(len),
    "_lower": _unary(str.lower),
    "_upper": _unary(str.upper),
    "_abs": _unary(abs),
    "_round": _round,
    "_min": _extreme(min),
    "_max": _extreme(max),
    "_hours_since": _hours_since,
    "_days_since": _days_since,
}


@dataclass(frozen=True, slots=True)
class _Func:
    helper: str
    params: tuple[tuple[Kind, ...], ...]
    result: Kind
    variadic: bool = False
    takes_now: bool = False
    doc: str = ""


#: The functions an expression may call, and nothing else.
FUNCTIONS: dict[str, _Func] = {
    "len": _Func("_len", (("str", "list"),), "num", doc="length of a text or list"),
    "lower": _Func("_lower", (("str",),), "str", doc="text in lower case"),
    "upper": _Func("_upper", (("str",),), "str", doc="text in upper case"),
    "abs": _Func("_abs", (("num",),), "num", doc="absolute value"),
    "round": _Func("_round", (("num",), ("num",)), "num", doc="round(x) or round(x, digits)"),
    "min": _Func("_min", (("num",),), "num", variadic=True, doc="smallest non-null argument"),
    "max": _Func("_max", (("num",),), "num", variadic=True, doc="largest non-null argument"),
    "hours_since": _Func(
        "_hours_since", (("time",),), "num", takes_now=True, doc="hours from a time to as_of"
    ),
    "days_since": _Func(
        "_days_since", (("time",),), "num", takes_now=True, doc="days from a time to as_of"
    ),
}

#: Functions over a figure's past: previous(x, "30d"), delta(x, "30d"), changed(x),
#: since(x), held(x). Their first argument must be a field such as account.health_score.
HISTORY_FUNCTIONS: dict[str, str] = {
    "previous": "the value as of a duration ago (or at the previous cycle, or the "
    "respondent's previous answer); null when unknown",
    "delta": "the value now minus previous(x, ...)",
    "changed": "whether the value differs from the previous cycle's (or previous answer)",
    "since": "days the current value has held",
    "held": "days the value before the current one had held",
}

_CONSTANT_NAMES: dict[str, tuple[str, Type]] = {
    "null": ("None", Type("null", optional=True)),
    "None": ("None", Type("null", optional=True)),
    "true": ("True", Type("bool")),
    "True": ("True", Type("bool")),
    "false": ("False", Type("bool")),
    "False": ("False", Type("bool")),
}

_ORDER_OPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: ("<", "_lt"),
    ast.LtE: ("<=", "_le"),
    ast.Gt: (">", "_gt"),
    ast.GtE: (">=", "_ge"),
}
_ARITH_OPS: dict[type[ast.operator], tuple[str, str]] = {
    ast.Add: ("+", "_add"),
    ast.Sub: ("-", "_sub"),
    ast.Mult: ("*", "_mul"),
    ast.Div: ("/", "_div"),
    ast.Mod: ("%", "_mod"),
}


@dataclass(frozen=True, slots=True)
class _Code:
    src: str
    type: Type
    #: For a field with a fixed set of values: its name and the values.
    values: tuple[str, tuple[str, ...]] | None = None
    #: For a list literal: its items.
    items: tuple[object, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Var:
    """A bare variable name: only valid as the base of ``.field``."""

    name: str


def compile_expr(text: str, scope: Scope, *, expect: Kind | None = "bool") -> CompiledExpr:
    """Check ``text`` for ``scope`` and compile it; raise ``ExprError`` with a position.

    ``expect`` is the kind the result must have (``None``: any value, for templates).
    """
    if not isinstance(text, str) or not text.strip():
        raise ExprError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters")
    tree = _parse(text)
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"the expression has more than {MAX_NODES} parts; split the rule")
    compiler = _Compiler(scope)
    code = compiler.value(tree.body)
    if expect is not None and code.type.kind not in (expect, "null"):
        raise _error(tree.body, f"the expression must give {expect}, it gives {code.type}")
    return CompiledExpr(
        text=text,
        type=code.type,
        fn=_build(code.src, compiler.constants),
        variables=frozenset(compiler.used),
        changes=tuple(
            Change(label, _build(before, compiler.constants), _build(after, compiler.constants))
            for label, before, after in compiler.changes
        ),
        reads_clock=compiler.reads_clock,
        history_keys=frozenset(compiler.history_keys),
    )


def _parse(text: str) -> ast.Expression:
    # Leading spaces and newlines from YAML block scalars are not Python indentation.
    try:
        return ast.parse("(" + text.strip() + "\n)", mode="eval")
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = max(1, (exc.offset or 1) - (1 if line == 1 else 0))
        raise ExprError(f"syntax error: {exc.msg}", line, column) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("the expression is nested too deeply") from None


def _build(src: str, constants: dict[str, Any]) -> Evaluator:
    namespace: dict[str, Any] = {"__builtins__": {}, **_HELPERS, **constants}
    code = compile(f"lambda r, a, p, now, h=None: {src}", "<rule expression>", "eval")
    fn: Evaluator = eval(code, namespace)  # noqa: S307  # source built only from checked parts
    return fn


def _error(node: ast.AST, message: str) -> ExprError:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0) + (0 if line > 1 else -1)
    return ExprError(message, line, max(1, col + 1))


class _Compiler:
    """Walk a parsed expression, check every node, and emit safe Python source."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.visible = SCOPE_VARIABLES[scope]
        self.constants: dict[str, Any] = {}
        self.used: set[str] = set()
        self.changes: list[tuple[str, str, str]] = []
        self.history_keys: set[str] = set()
        self.reads_clock = False

    def value(self, node: ast.expr) -> _Code:
        result = self._node(node)
        if isinstance(result, _Var):
            raise _error(node, f"'{result.name}' needs a field, e.g. {result.name}.{_some(result)}")
        return result

    def _node(self, node: ast.expr) -> _Code | _Var:  # noqa: PLR0911  # one branch per node type
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.Subscript):
            return self._subscript(node)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            return self._ifexp(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.List | ast.Tuple):
            return self._list(node)
        raise _error(node, f"{_describe(node)} is not allowed in a rule expression")

    def _constant(self, node: ast.Constant) -> _Code:
        value = node.value
        if value is None:
            return _Code("None", Type("null", optional=True))
        if isinstance(value, bool):
            return _Code(repr(value), Type("bool"))
        if isinstance(value, int | float):
            return _Code(repr(value), Type("num"))
        if isinstance(value, str):
            if len(value) > MAX_STRING:
                raise _error(node, f"text constants are limited to {MAX_STRING} characters")
            return _Code(repr(value), Type("str"))
        raise _error(node, f"the constant {value!r} is not allowed")

    def _name(self, node: ast.Name) -> _Code | _Var:
        if node.id in _CONSTANT_NAMES:
            src, typ = _CONSTANT_NAMES[node.id]
            return _Code(src, typ)
        if node.id in self.visible:
            self.used.add(node.id)
            return _Var(node.id)
        if node.id in FUNCTIONS:
            raise _error(node, f"'{node.id}' is a function: call it, e.g. {node.id}(...)")
        raise _error(node, _unknown(node.id, [*self.visible, "null", "true", "false"], "name"))

    def _attribute(self, node: ast.Attribute) -> _Code:
        base = self._node(node.value)
        if isinstance(base, _Var):
            field = _field(base.name, node.attr, node)
            values = (f"{base.name}.{node.attr}", field.values) if field.values else None
            return _Code(field.source, Type(field.kind, field.optional), values)
        if base.type.kind == "tiers":
            return self._tier(base, node.attr, node)
        raise _error(node, f"{base.type} has no field '{node.attr}'")

    def _tier(self, base: _Code, key: str, node: ast.AST) -> _Code:
        if key not in TIER_KEYS:
            raise _error(node, _unknown(key, TIER_KEYS, "tier"))
        return _Code(f"{base.src}.get({key!r})", Type("num", optional=True))

    def _subscript(self, node: ast.Subscript) -> _Code:
        base = self.value(node.value)
        key = node.slice
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise _error(node, 'only a quoted key may be used in [...], e.g. attributes["region"]')
        if base.type.kind == "tiers":
            return self._tier(base, key.value, node)
        if base.type.kind != "map":
            raise _error(node, f"{base.type} cannot be indexed with [...]")
        return _Code(f"{base.src}.get({key.value!r})", Type("str", optional=True))

    def _boolop(self, node: ast.BoolOp) -> _Code:
        parts = [self._expect(v, ("bool", "null")) for v in node.values]
        joiner = " and " if isinstance(node.op, ast.And) else " or "
        return _Code("(" + joiner.join(p.src for p in parts) + ")", Type("bool"))

    def _unary(self, node: ast.UnaryOp) -> _Code:
        if isinstance(node.op, ast.Not):
            inner = self._expect(node.operand, ("bool", "null"))
            return _Code(f"(not {inner.src})", Type("bool"))
        if isinstance(node.op, ast.USub | ast.UAdd):
            inner = self._expect(node.operand, ("num",))
            if isinstance(node.op, ast.UAdd):
                return inner
            src = f"_neg({inner.src})" if inner.type.optional else f"(-{inner.src})"
            return _Code(src, inner.type)
        raise _error(node, f"{_describe(node)} is not allowed in a rule expression")

    def _binop(self, node: ast.BinOp) -> _Code:
        ops = _ARITH_OPS.get(type(node.op))
        if ops is None:
            raise _error(node, f"the operator {_op_name(node.op)} is not allowed")
        left, right = self.value(node.left), self.value(node.right)
        kinds: tuple[Kind, ...] = ("num", "str") if isinstance(node.op, ast.Add) else ("num",)
        for side, code in ((node.left, left), (node.right, right)):
            if code.type.kind not in kinds:
                raise _error(side, f"{_op_name(node.op)} needs numbers, not {code.type}")
        if left.type.kind != right.type.kind:
            raise _error(node, f"cannot combine {left.type} and {right.type}")
        optional = left.type.optional or right.type.optional
        symbol, helper = ops
        if optional or isinstance(node.op, ast.Div | ast.Mod):
            optional = optional or isinstance(node.op, ast.Div | ast.Mod)
            return _Code(f"{helper}({left.src}, {right.src})", Type(left.type.kind, optional))
        return _Code(f"({left.src} {symbol} {right.src})", Type(left.type.kind))

    def _compare(self, node: ast.Compare) -> _Code:
        parts: list[str] = []
        left_node, left = node.left, self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node)
            parts.append(self._pair(op, left, right, right_node))
            left_node, left = right_node, right
        del left_node
        src = parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"
        return _Code(src, Type("bool"))

    def _pair(self, op: ast.cmpop, left: _Code, right: _Code, node: ast.expr) -> str:
        if isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
            _known_values(left, right, node)
        if isinstance(op, ast.Eq | ast.NotEq):
            _comparable(left, right, node)
            return f"({left.src} {'==' if isinstance(op, ast.Eq) else '!='} {right.src})"
        if isinstance(op, ast.Is | ast.IsNot):
            if right.type.kind != "null":
                raise _error(node, "'is' compares only with null; use == for values")
            return f"({left.src} {'is' if isinstance(op, ast.Is) else 'is not'} None)"
        if isinstance(op, ast.In | ast.NotIn):
            return self._membership(op, left, right, node)
        symbol, helper = _ORDER_OPS[type(op)]
        if left.type.kind != right.type.kind or left.type.kind not in ("num", "str", "time"):
            raise _error(node, f"cannot order {left.type} against {right.type}")
        if left.type.optional or right.type.optional:
            return f"{helper}({left.src}, {right.src})"
        return f"({left.src} {symbol} {right.src})"

    def _membership(self, op: ast.cmpop, left: _Code, right: _Code, node: ast.expr) -> str:
        if right.type.kind == "str" and left.type.kind == "str":
            test = f"_in({left.src}, {right.src})"
        elif right.type.kind == "list" and left.type.kind in ("str", "num", "null"):
            test = (
                f"_in({left.src}, {right.src})"
                if right.type.optional
                else (f"({left.src} in {right.src})")
            )
        else:
            raise _error(node, f"'in' needs a text or a list on the right, not {right.type}")
        return f"(not {test})" if isinstance(op, ast.NotIn) else test

    def _ifexp(self, node: ast.IfExp) -> _Code:
        test = self._expect(node.test, ("bool", "null"))
        body, orelse = self.value(node.body), self.value(node.orelse)
        kinds = {body.type.kind, orelse.type.kind} - {"null"}
        if len(kinds) > 1:
            raise _error(node, f"both branches must give the same type: {body.type}, {orelse.type}")
        kind = kinds.pop() if kinds else "null"
        optional = body.type.optional or orelse.type.optional
        return _Code(f"({body.src} if {test.src} else {orelse.src})", Type(kind, optional))

    def _call(self, node: ast.Call) -> _Code:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in HISTORY_FUNCTIONS:
            return self._history(node, name)
        func = FUNCTIONS.get(name or "")
        if name is None or func is None:
            raise _error(node, _unknown(name or _describe(node.func), FUNCTIONS, "function"))
        if node.keywords:
            raise _error(node, f"{name}() takes no keyword arguments")
        if not func.variadic and not (1 <= len(node.args) <= len(func.params)):
            raise _error(node, f"{name}() takes {len(func.params)} argument(s)")
        if func.variadic and not node.args:
            raise _error(node, f"{name}() needs at least one argument")
        args = []
        for i, arg in enumerate(node.args):
            kinds = func.params[0] if func.variadic else func.params[i]
            args.append(self._expect(arg, (*kinds, "null")).src)
        if func.takes_now:
            args.insert(0, "now")
            self.reads_clock = True
        return _Code(f"{func.helper}({', '.join(args)})", Type(func.result, optional=True))

    def _history(self, node: ast.Call, name: str) -> _Code:
        """``previous``/``delta``/``changed``/``since``/``held`` of one field."""
        variable, key, field = self._history_field(node, name)
        seconds, spelled = _history_duration(node, name, variable)
        # a figure's value a duration ago, and how long a value has held, move with the
        # clock; the previous cycle's value and a respondent's previous answer do not
        if seconds is not None or name in ("since", "held"):
            self.reads_clock = True
        current = field.source
        if variable == "account":
            self.history_keys.add(key)
            before = f"(h or _NOH).account(now, a.metrics.id, {key!r}, {field.kind!r}, {seconds!r})"
        elif variable == "portfolio":
            before = f"(h or _NOH).portfolio(now, {key!r}, {seconds!r})"
        else:
            before = f"_on(_prev_answer(h, r), lambda r: {current})"
        self.changes.append((f"{variable}.{key}{spelled}", before, current))
        if name == "previous":
            return _Code(before, Type(field.kind, optional=True))
        if name == "delta":
            return _Code(f"_sub({current}, {before})", Type("num", optional=True))
        if name == "changed":
            if variable == "account":
                src = f"(h or _NOH).account_changed(now, a.metrics.id, {key!r}, {current})"
            elif variable == "portfolio":
                src = f"(h or _NOH).portfolio_changed(now, {key!r}, {current})"
            else:
                src = f"_differs({before}, {current}, _prev_answer(h, r) is not None)"
            return _Code(src, Type("bool"))
        method = "account_" if variable == "account" else "portfolio_"
        subject = "a.metrics.id, " if variable == "account" else ""
        src = f"(h or _NOH).{method}{name}(now, {subject}{key!r}, {current})"
        return _Code(src, Type("num", optional=True))

    def _history_field(self, node: ast.Call, name: str) -> tuple[str, str, Field]:
        timed = name in ("previous", "delta")
        if node.keywords:
            raise _error(node, f"{name}() takes no keyword arguments")
        if not node.args or len(node.args) > (2 if timed else 1):
            usage = f'{name}(account.health_score, "30d")' if timed else f"{name}(account.nps)"
            more = ", and optionally a duration," if timed else ""
            raise _error(node, f"{name}() takes a field{more}: {usage}")
        target = node.args[0]
        if not (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id in self.visible
        ):
            raise _error(target, f"{name}() needs a field such as account.health_score")
        variable, key = target.value.id, target.attr
        field = _field(variable, key, target)
        self.used.add(variable)
        problem = None
        if variable == "contact":
            problem = f"{name}() reads account, portfolio or response fields, not contact"
        elif variable == "account" and not field.source.startswith("a.metrics."):
            problem = f"{name}() needs a figure the history keeps; account.{key} is not one"
        elif variable == "portfolio" and key not in PORTFOLIO_KEYS:
            problem = f"{name}() needs a figure the history keeps; portfolio.{key} is not one"
        elif variable == "response" and name in ("since", "held"):
            problem = f"{name}() applies to account and portfolio figures"
        elif name == "delta" and field.kind != "num":
            problem = f"delta() needs a number, {variable}.{key} is {field.kind}"
        if problem is not None:
            raise _error(target, problem)
        return variable, key, field

    def _list(self, node: ast.List | ast.Tuple) -> _Code:
        if len(node.elts) > MAX_LIST:
            raise _error(node, f"lists are limited to {MAX_LIST} items")
        values = []
        for elt in node.elts:
            if not (isinstance(elt, ast.Constant) and isinstance(elt.value, str | int | float)):
                raise _error(elt, "list items must be quoted texts or numbers")
            values.append(elt.value)
        name = f"_c{len(self.constants)}"
        self.constants[name] = frozenset(values)
        return _Code(name, Type("list"), items=tuple(values))

    def _expect(self, node: ast.expr, kinds: tuple[Kind, ...]) -> _Code:
        code = self.value(node)
        if code.type.kind not in kinds:
            wanted = " or ".join(k for k in kinds if k != "null")
            raise _error(node, f"expected {wanted}, got {code.type}")
        return code


def _history_duration(node: ast.Call, name: str, variable: str) -> tuple[float | None, str]:
    """The duration argument in seconds and as written (None, "": the previous cycle)."""
    if len(node.args) < 2:
        return None, ""
    text = node.args[1]
    if variable == "response":
        raise _error(text, f"{name}() of a response field takes no duration (previous answer)")
    if not (isinstance(text, ast.Constant) and isinstance(text.value, str)):
        raise _error(text, 'the duration must be quoted, e.g. "30d"')
    try:
        return parse_duration(text.value).total_seconds(), f", {text.value}"
    except DurationError as exc:
        raise _error(text, str(exc)) from None


def _field(variable: str, name: str, node: ast.AST) -> Field:
    fields = VARIABLES[variable]
    if name not in fields:
        raise _error(node, _unknown(name, fields, f"field {variable}.", quote=False))
    return fields[name]


def _known_values(left: _Code, right: _Code, node: ast.expr) -> None:
    """``contact.tier == "executiv"`` can never be true: say so at load time."""
    field, other = (left, right) if left.values else (right, left)
    if field.values is None:
        return
    name, allowed = field.values
    candidates: tuple[object, ...] = ()
    if other.items is not None:
        candidates = other.items
    elif other.type.kind == "str" and other.src.startswith(("'", '"')):
        candidates = (ast.literal_eval(other.src),)
    for value in candidates:
        if value not in allowed:
            raise _error(node, _unknown(str(value), allowed, f"value of {name}:"))


def _comparable(left: _Code, right: _Code, node: ast.expr) -> None:
    kinds = {left.type.kind, right.type.kind} - {"null"}
    if len(kinds) > 1:
        raise _error(node, f"cannot compare {left.type} with {right.type}")


def _unknown(name: str, known: Any, what: str, *, quote: bool = True) -> str:
    choices = [str(k) for k in known]
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(choices))}"
    shown = f" '{name}'" if quote else f"{name}"
    return f"unknown {what}{shown}{hint}"


def _some(var: _Var) -> str:
    return next(iter(VARIABLES[var.name]))


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "a lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator",
        "Dict": "a dict literal",
        "Set": "a set literal",
        "JoinedStr": "an f-string",
        "NamedExpr": "an assignment (:=)",
        "Starred": "a starred argument",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Slice": "a slice",
    }
    return names.get(type(node).__name__, f"'{type(node).__name__}'")


def _op_name(op: ast.AST) -> str:
    names = {
        "Add": "+",
        "Sub": "-",
        "Mult": "*",
        "Div": "/",
        "Mod": "%",
        "FloorDiv": "//",
        "Pow": "**",
        "BitOr": "|",
        "BitAnd": "&",
        "BitXor": "^",
        "LShift": "<<",
        "RShift": ">>",
        "MatMult": "@",
    }
    return names.get(type(op).__name__, type(op).__name__)
