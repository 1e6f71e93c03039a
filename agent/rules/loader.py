"""Load a rule set: every file parsed, validated and compiled before anything runs.

All errors of all files are collected and each names ``file:line:column`` and what
is wrong; a set with any error is rejected whole (``RuleLoadError``).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from agent.core.routes import Route
from agent.rules.expr import CompiledExpr, ExprError, compile_expr
from agent.rules.model import Rule, TaskAction
from agent.rules.template import Template, compile_template
from agent.rules.yamlpos import Located, Position, YamlError, read_located

__all__ = [
    "DEFAULT_MESSAGES",
    "CompiledRule",
    "CompiledTask",
    "RuleError",
    "RuleLoadError",
    "RuleSet",
    "fingerprint",
    "load_rules",
    "rule_files",
]

DEFAULT_MESSAGES = {
    "response": "{contact.name} ({contact.tier}) at {account.name} scored {response.score}",
    "account": "{account.name}: health {account.health_status}, NPS {account.nps}",
    "portfolio": "Portfolio: revenue coverage {portfolio.revenue_coverage | pct}",
}


@dataclass(frozen=True, slots=True)
class RuleError:
    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class RuleLoadError(Exception):
    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class CompiledTask:
    """A rule's ``task:`` with its subject and body templates compiled."""

    action: TaskAction
    subject: Template
    body: Template


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    when: CompiledExpr
    message: Template
    unless: CompiledExpr | None
    path: Path
    line: int
    task: CompiledTask | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def history_keys(self) -> frozenset[str]:
        """The account figures the rule's condition and texts read from the history."""
        keys = set(self.when.history_keys) | self.message.history_keys
        if self.unless is not None:
            keys |= self.unless.history_keys
        if self.task is not None:
            keys |= self.task.subject.history_keys | self.task.body.history_keys
        return frozenset(keys)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[CompiledRule, ...]
    fingerprint: str

    def by_id(self) -> dict[str, CompiledRule]:
        return {r.id: r for r in self.rules}

    def enabled(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.rule.enabled)


def rule_files(path: Path) -> list[Path]:
    """The YAML files of a rule folder in name order (or the one file given)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def fingerprint(path: Path) -> str:
    """A hash of the rule files' names and contents: changes when any file does."""
    digest = hashlib.sha256()
    for file in rule_files(path):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def load_rules(path: Path, *, channels: Collection[str], routes: Mapping[str, Route]) -> RuleSet:
    """Validate and compile every rule under ``path``; raise ``RuleLoadError`` on any error."""
    if not path.exists():
        raise RuleLoadError([RuleError(path, 1, 1, "no such file or folder")])
    errors: list[RuleError] = []
    compiled: list[CompiledRule] = []
    ids: dict[str, RuleError] = {}
    pending_inhibits: list[tuple[str, RuleError]] = []
    for file in rule_files(path):
        checker = _FileChecker(file, channels, routes)
        for rule in checker.run():
            where = checker.at(rule, ("id",))
            if rule.rule.id in ids:
                first = ids[rule.rule.id]
                used = f"{first.path}:{first.line}"
                errors.append(_err(where, f"rule id '{rule.id}' is already used at {used}"))
                continue
            ids[rule.rule.id] = where
            compiled.append(rule)
            for i, target in enumerate(rule.rule.inhibits):
                pending_inhibits.append((target, checker.at(rule, ("inhibits", i))))
        errors.extend(checker.errors)
    for target, where in pending_inhibits:
        if target not in ids:
            errors.append(_err(where, _unknown(target, ids, "rule")))
    if errors:
        raise RuleLoadError(errors)
    return RuleSet(rules=tuple(compiled), fingerprint=fingerprint(path))


def _err(where: RuleError, message: str) -> RuleError:
    return RuleError(where.path, where.line, where.column, message)


def _unknown(name: str, known: Collection[str], what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = (
        f"; did you mean '{close[0]}'?"
        if close
        else (f"; known: {', '.join(sorted(known))}" if known else "")
    )
    return f"unknown {what} '{name}'{hint}"


class _FileChecker:
    """Everything about one file: YAML, models, references, expressions."""

    def __init__(self, path: Path, channels: Collection[str], routes: Mapping[str, Route]) -> None:
        self.path = path
        self.channels = channels
        self.routes = routes
        self.errors: list[RuleError] = []
        self.doc = Located(data=None)
        self._index: dict[int, int] = {}

    def error(self, position: Position, message: str) -> None:
        self.errors.append(RuleError(self.path, position.line, position.column, message))

    def at(self, rule: CompiledRule, sub: tuple[str | int, ...]) -> RuleError:
        pos = self.doc.value_at(("rules", self._index[id(rule)], *sub))
        return RuleError(self.path, pos.line, pos.column, "")

    def run(self) -> list[CompiledRule]:
        try:
            self.doc = read_located(self.path)
        except YamlError as exc:
            self.error(exc.position, exc.message)
            return []
        except (OSError, UnicodeDecodeError) as exc:
            self.error(Position(1, 1), f"cannot read the file: {exc}")
            return []
        data = self.doc.data
        if data is None:
            return []
        if not isinstance(data, dict) or "rules" not in data:
            self.error(Position(1, 1), "a rule file is a mapping with a 'rules:' list")
            return []
        self._validate_top(data)
        items = data["rules"]
        if not isinstance(items, list):
            self.error(self.doc.value_at(("rules",)), "'rules' must be a list of rules")
            return []
        out = []
        for i, item in enumerate(items):
            rule = self._rule(i, item)
            if rule is not None:
                self._index[id(rule)] = i
                out.append(rule)
        return out

    def _validate_top(self, data: dict[str, Any]) -> None:
        for key in data:
            if key != "rules":
                self.error(self.doc.key_at((key,)), _unknown(key, ["rules"], "top-level key"))

    def _rule(self, index: int, item: Any) -> CompiledRule | None:
        base: tuple[str | int, ...] = ("rules", index)
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            self._pydantic(exc, base)
            self._raw_expressions(item, base)
            return None
        before = len(self.errors)
        self._references(rule, base)
        self._scope_fits(rule, base)
        when = self._expr(rule.when, rule, (*base, "when"))
        unless = None
        if rule.escalate is not None and rule.escalate.unless is not None:
            unless = self._expr(rule.escalate.unless, rule, (*base, "escalate", "unless"))
        message = self._template(rule, base)
        task = self._task(rule, base)
        if len(self.errors) > before or when is None or message is None:
            return None
        line = self.doc.value_at(base).line
        return CompiledRule(rule, when, message, unless, self.path, line, task)

    def _pydantic(self, exc: ValidationError, base: tuple[str | int, ...]) -> None:
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                known = _fields_at(Rule, loc[:-1])
                self.error(self.doc.key_at((*base, *loc)), _unknown(str(loc[-1]), known, "field"))
                continue
            msg = err["msg"].removeprefix("Value error, ")
            name = ".".join(str(p) for p in loc) or "rule"
            self.error(self.doc.value_at((*base, *loc)), f"{name}: {msg}")

    def _raw_expressions(self, item: Any, base: tuple[str | int, ...]) -> None:
        """Still check ``when`` of a rule whose other fields are wrong: report everything."""
        if not isinstance(item, dict) or item.get("scope") not in DEFAULT_MESSAGES:
            return
        when = item.get("when")
        if isinstance(when, str) and when.strip():
            try:
                compile_expr(when, item["scope"])
            except ExprError as exc:
                where = self._inside((*base, "when"), when, exc.line, exc.column)
                self.error(where, exc.message)

    def _references(self, rule: Rule, base: tuple[str | int, ...]) -> None:
        notify = rule.notify
        if notify.channel is not None:
            self._channel(notify.channel, (*base, "notify", "channel"))
        if notify.route is not None and notify.route not in self.routes:
            where = self.doc.value_at((*base, "notify", "route"))
            self.error(where, _unknown(notify.route, self.routes, "route"))
        if rule.escalate is not None:
            self._channel(rule.escalate.to, (*base, "escalate", "to"))

    def _channel(self, name: str, path: tuple[str | int, ...]) -> None:
        if name not in self.channels:
            self.error(self.doc.value_at(path), _unknown(name, self.channels, "channel"))

    def _scope_fits(self, rule: Rule, base: tuple[str | int, ...]) -> None:
        if rule.scope == "response" and rule.realert is not None:
            self.error(
                self.doc.key_at((*base, "realert")),
                "realert applies to account and portfolio rules only; "
                "a response rule fires once per response",
            )
        if rule.scope != "response" and "max_age" in (self.doc.data["rules"][base[1]] or {}):
            where = self.doc.key_at((*base, "max_age"))
            self.error(where, "max_age applies to response rules only")
        if rule.scope == "portfolio" and (rule.notify.owner or rule.notify.mention_owner):
            where = self.doc.value_at((*base, "notify"))
            self.error(where, "a portfolio rule has no account owner")
        if rule.attach is not None and rule.scope != "portfolio":
            self.error(
                self.doc.key_at((*base, "attach")),
                "attach applies to portfolio rules only; the chart shows the whole portfolio",
            )
        if rule.scope == "portfolio" and rule.escalate is not None:
            self.error(
                self.doc.key_at((*base, "escalate")),
                "escalate applies to response and account rules only",
            )
        self._task_fits(rule, base)

    def _task_fits(self, rule: Rule, base: tuple[str | int, ...]) -> None:
        if rule.task is None:
            if not rule.notify.slack:
                where = self.doc.value_at((*base, "notify", "slack"))
                self.error(where, "notify.slack: false needs a task: the rule would do nothing")
            return
        if rule.scope == "portfolio":
            self.error(
                self.doc.key_at((*base, "task")),
                "task applies to response and account rules only; a task needs an account",
            )
        elif rule.scope == "account" and rule.task.every is None:
            self.error(
                self.doc.value_at((*base, "task")),
                "task.every is required on account rules: at most one task per account "
                "in that period (e.g. every: 90d)",
            )
        if rule.escalate is not None and not rule.notify.slack:
            self.error(
                self.doc.key_at((*base, "escalate")),
                "escalate needs a Slack message; remove notify.slack: false or escalate",
            )

    def _expr(self, text: str, rule: Rule, path: tuple[str | int, ...]) -> CompiledExpr | None:
        try:
            return compile_expr(text, rule.scope)
        except ExprError as exc:
            self.error(self._inside(path, text, exc.line, exc.column), exc.message)
            return None

    def _task(self, rule: Rule, base: tuple[str | int, ...]) -> CompiledTask | None:
        """The task's templates, checked like ``message`` (same fields, same formats)."""
        action = rule.task
        if action is None:
            return None
        subject = self._compile((*base, "task", "subject"), action.subject, rule)
        body = self._compile((*base, "task", "body"), action.body, rule)
        if subject is None or body is None:
            return None
        return CompiledTask(action, subject, body)

    def _compile(self, path: tuple[str | int, ...], text: str, rule: Rule) -> Template | None:
        try:
            return compile_template(text, rule.scope)
        except ExprError as exc:
            self.error(self._inside(path, text, exc.line, exc.column), exc.message)
            return None

    def _template(self, rule: Rule, base: tuple[str | int, ...]) -> Template | None:
        text = rule.message if rule.message is not None else DEFAULT_MESSAGES[rule.scope]
        try:
            return compile_template(text, rule.scope)
        except ExprError as exc:
            self.error(self._inside((*base, "message"), text, exc.line, exc.column), exc.message)
            return None

    def _inside(self, path: tuple[str | int, ...], text: str, line: int, column: int) -> Position:
        """Map a position inside a scalar's text to the file."""
        start = self.doc.value_at(path)
        if start.style in ("|", ">"):
            blank = len(text) - len(text.lstrip("\n"))
            first = start.line + 1 + blank
            raw = self.doc.lines[first - 1] if 0 < first <= len(self.doc.lines) else ""
            indent = len(raw) - len(raw.lstrip())
            return Position(first + line - 1, indent + column)
        quote = 1 if start.style in ("'", '"') else 0
        if line == 1:
            lead = len(text) - len(text.lstrip())
            return Position(start.line, start.column + quote + lead + column - 1)
        return Position(start.line + line - 1, column)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _model_in(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
