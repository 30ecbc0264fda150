"""`given` paths: JSONPath Plus, as Spectral rulesets write it, evaluated by python-jsonpath.

python-jsonpath (RFC 9535 and a few extensions) does the parsing and the selecting. What Spectral
rulesets write beyond RFC 9535 is translated first (see `translate`): bare names in brackets
(`[get,put]`), a trailing `~` (the key of each match) or `^` (its parent), `@property`, `@path`,
`===`, and the JavaScript string methods filters use (`.match(/re/)`, `.indexOf(s)`, `.includes(s)`,
`.startsWith(s)`, `.endsWith(s)`). Anything else that does not compile is an `UnsupportedPath`, and
the rule that uses it is reported as unsupported, never dropped quietly.

The document is seen through local `$ref`s (a `resolved: true` rule, Spectral's default): stepping to a
member follows its reference, so `$.paths.*.*.responses.*.content` reaches a response written in
`components`, and recursive descent (`..`) visits every node reachable through references, each once
(so it ends on recursive schemas). Each selected node carries the pointer where it is written, so
findings point into the file, and a node reached twice is reported once.

Work is bounded by a `Budget`: every node looked at and every regular expression run counts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import regex
from jsonpath import JSONPath, JSONPathEnvironment, JSONPathError
from jsonpath.function_extensions import ExpressionType, FilterFunction
from jsonpath.segments import JSONPathRecursiveDescentSegment

from contracts.references import child, follow


class UnsupportedPath(ValueError):
    """A `given` this engine cannot evaluate (a script, an unknown filter): the reason in one line."""


class BudgetExceeded(Exception):
    """A lint ran out of its time or step budget."""


class Budget:
    """How much one lint may do: a deadline and a number of steps (nodes visited, regexes run)."""

    def __init__(self, seconds: float | None = None, steps: int | None = None) -> None:
        self.seconds, self.max_steps = seconds, steps
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.steps = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.max_steps is not None and self.steps > self.max_steps:
            raise BudgetExceeded(f"the lint took more than {self.max_steps:,} steps")
        # Reading the clock costs more than a step; every 256th is often enough.
        if self.deadline is not None and self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise BudgetExceeded(f"the lint took more than {self.seconds:g} s")

    def regex_timeout(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise BudgetExceeded(f"the lint took more than {self.seconds:g} s")
        return left


UNLIMITED = Budget()
_BUDGET: ContextVar[Budget] = ContextVar("lint_budget", default=UNLIMITED)


def search(pattern: regex.Pattern[str], text: str, budget: Budget) -> bool:
    """`pattern.search(text)`, stopped at the budget's deadline (`regex` can time out, `re` cannot)."""
    budget.step()
    try:
        return pattern.search(text, timeout=budget.regex_timeout()) is not None
    except TimeoutError:
        raise BudgetExceeded(f"a regular expression ran past the lint's {budget.seconds:g} s") from None


# --- the document as the paths see it -------------------------------------------------------------


class _Scope:
    def __init__(self, doc: Any, resolved: bool, budget: Budget) -> None:
        self.doc = doc
        self.resolved = resolved
        self.budget = budget
        self.views: dict[str, Node | Items] = {}

    def view(self, value: Any, pointer: str) -> Any:
        """The value at `pointer` as paths see it: containers wrapped, `$ref`s followed when resolved."""
        if self.resolved:
            value, pointer = follow(self.doc, value, pointer)
        if not isinstance(value, dict | list):
            return value
        found = self.views.get(pointer)
        if found is None:
            self.budget.step()
            found = Node(value, pointer, self) if isinstance(value, dict) else Items(value, pointer, self)
            self.views[pointer] = found
        return found


class Node(Mapping[str, Any]):
    """A JSON object with the pointer it is written at; members through their `$ref`s."""

    __slots__ = ("_members", "_written", "pointer", "raw", "scope")

    def __init__(self, raw: dict[str, Any], pointer: str, scope: _Scope) -> None:
        self.raw, self.pointer, self.scope = raw, pointer, scope
        self._members: dict[str, Any] | None = None
        self._written: list[tuple[str, Any]] | None = None

    def _all(self) -> dict[str, Any]:
        if self._members is None:
            self._members = {
                str(k): self.scope.view(v, child(self.pointer, str(k))) for k, v in self.raw.items()
            }
        return self._members

    def __getitem__(self, key: str) -> Any:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self.raw)

    def containers(self) -> list[tuple[str, Any]]:
        """(key, view) for each member that is an object or an array (after its `$ref`), as `..` walks."""
        if self._written is None:
            self._written = [(k, v) for k, v in self._all().items() if isinstance(v, Node | Items)]
        return self._written


class Items(Sequence[Any]):
    """A JSON array with the pointer it is written at; items through their `$ref`s."""

    __slots__ = ("_items", "_written", "pointer", "raw", "scope")

    def __init__(self, raw: list[Any], pointer: str, scope: _Scope) -> None:
        self.raw, self.pointer, self.scope = raw, pointer, scope
        self._items: list[Any] | None = None
        self._written: list[tuple[int, Any]] | None = None

    def _all(self) -> list[Any]:
        if self._items is None:
            self._items = [self.scope.view(v, child(self.pointer, i)) for i, v in enumerate(self.raw)]
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self.raw)

    def containers(self) -> list[tuple[int, Any]]:
        if self._written is None:
            self._written = [(i, v) for i, v in enumerate(self._all()) if isinstance(v, Node | Items)]
        return self._written


def raw(value: Any) -> Any:
    """A selected value as written (its own members' `$ref`s not followed)."""
    return value.raw if isinstance(value, Node | Items) else value


def plain(value: Any, budget: Budget = UNLIMITED, max_nodes: int = 5_000) -> Any:
    """A selected value as plain JSON for functions that need it (`schema`), local `$ref`s inlined.

    A `$ref` that would recurse into itself stays a `$ref`, and so does every `$ref` met after
    `max_nodes` nodes: inlining all of Stripe's references below one response is millions of nodes.
    """
    count = 0

    def build(node: Any, pointer: str, scope: _Scope | None, chain: frozenset[str]) -> Any:
        nonlocal count
        count += 1
        budget.step()
        if scope is not None and isinstance(node, dict) and scope.resolved and count <= max_nodes:
            target, where = follow(scope.doc, node, pointer)
            if where != pointer:
                if where in chain:
                    return node
                node, pointer, chain = target, where, chain | {where}
        if isinstance(node, dict):
            return {str(k): build(v, child(pointer, str(k)), scope, chain) for k, v in node.items()}
        if isinstance(node, list):
            return [build(v, child(pointer, i), scope, chain) for i, v in enumerate(node)]
        return node

    if isinstance(value, Node | Items):
        return build(value.raw, value.pointer, value.scope, frozenset({value.pointer}))
    return value


# --- Spectral's JSONPath Plus, translated ---------------------------------------------------------


class _NumberFunction(FilterFunction):
    """`number(#)`: JavaScript compares `@property >= 200` as numbers although keys are strings."""

    arg_types = [ExpressionType.VALUE]
    return_type = ExpressionType.VALUE

    def __call__(self, value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value
        try:
            return float(str(value))
        except ValueError:
            return float("nan")


class _PathFunction(FilterFunction):
    """`path(@)`: JSONPath Plus's `@path`, the normalized path of the node being filtered."""

    arg_types = [ExpressionType.VALUE]
    return_type = ExpressionType.VALUE

    def __call__(self, value: object) -> object:
        if not isinstance(value, Node | Items):
            return ""
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in value.pointer.split("/")[1:]]
        return "$" + "".join(f"[{t}]" if t.isdigit() else f"['{t}']" for t in tokens)


class _SearchFunction(FilterFunction):
    """`jsre(value, pattern)`: a JavaScript regular expression test inside a filter, under the budget."""

    arg_types = [ExpressionType.VALUE, ExpressionType.VALUE]
    return_type = ExpressionType.LOGICAL

    def __init__(self) -> None:
        self._cache: dict[str, regex.Pattern[str]] = {}

    def __call__(self, value: object, pattern: object) -> bool:
        if not isinstance(value, str | int) or not isinstance(pattern, str):
            return False
        compiled = self._cache.get(pattern)
        if compiled is None:
            compiled = self._cache[pattern] = compile_regex(pattern)
        return search(compiled, str(value), _BUDGET.get())


class _ReachableDescent(JSONPathRecursiveDescentSegment):
    """`..` over every node reachable from where it starts, `$ref`s followed, each written node once.

    Once per path segment, not once per way of reaching it: a fully resolved Stripe document is more
    than five million nodes, the document as written 200,000; and it ends on recursive schemas.
    """

    def resolve(self, nodes: Any) -> Any:
        visited: set[int] = set()
        for node in nodes:
            for found in self._reachable(node, visited):
                for selector in self.selectors:
                    yield from selector.resolve(found)

    def _reachable(self, node: Any, visited: set[int]) -> Any:
        stack = [node]
        while stack:
            current = stack.pop()
            obj = current.obj
            if isinstance(obj, Node | Items):
                if id(obj) in visited:
                    continue
                visited.add(id(obj))
                obj.scope.budget.step()
                children: Any = obj.containers()
            elif isinstance(obj, Mapping):
                children = [(k, v) for k, v in obj.items() if isinstance(v, Mapping | list)]
            else:
                children = []
            yield current
            stack.extend(current.new_child(value, key) for key, value in reversed(children))


class _Environment(JSONPathEnvironment):
    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        self.function_extensions["number"] = _NumberFunction()
        self.function_extensions["path"] = _PathFunction()
        self.function_extensions["jsre"] = _SearchFunction()


_ENV = _Environment()


def compile_regex(pattern: str) -> regex.Pattern[str]:
    """A JavaScript regular expression, `/body/flags` or a bare body, for Python: ValueError if `re`
    cannot compile it (the `regex` module runs it, as it can time out)."""
    body, flags = pattern, ""
    # `//` is the two characters, not an empty literal: Spectral reads `/.../` only around a body.
    if literal := re.fullmatch(r"/(.+)/([a-z]*)", pattern, re.DOTALL):
        body, flags = literal.group(1), literal.group(2)
    if set(flags) - set("gimsuy"):
        raise ValueError(f"unknown regular expression flags {flags!r}")
    # JavaScript's named groups `(?<name>...)` are Python's `(?P<name>...)`; `\/` is a plain `/`.
    body = re.sub(r"\(\?<(?![=!])", "(?P<", body)
    options = (re.IGNORECASE if "i" in flags else 0) | (re.MULTILINE if "m" in flags else 0)
    options |= re.DOTALL if "s" in flags else 0
    try:
        re.compile(body, options)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return regex.compile(body, options | regex.VERSION0)


class Path(NamedTuple):
    expression: str  # as the ruleset wrote it
    compiled: JSONPath
    mode: str  # "" (the nodes), "~" (their keys) or a run of "^" (their parents)


class Selected(NamedTuple):
    key: str | int | None  # the member name or index the node was selected by; None for the root
    value: Any  # a Node or Items for a container, else the value; the key itself for a `~` path
    pointer: str  # RFC 6901, where the node is written


def parse(expression: str) -> Path:
    if not isinstance(expression, str) or not expression.startswith("$"):
        raise UnsupportedPath("a path starts with `$`")
    if expression[1:2] not in ("", ".", "[", "~", "^"):
        raise UnsupportedPath(f"`{expression}`: expected `.` or `[` after `$`")
    if len(expression) > 1000:
        raise UnsupportedPath("a path is limited to 1,000 characters")
    body, mode = expression, ""
    while body.endswith(("^", "~")) and len(body) > 1:
        mode = body[-1] + mode
        body = body[:-1]
    if "~" in mode and mode != "~":
        raise UnsupportedPath(f"`{expression}`: `~` combined with `^` is not supported")
    try:
        compiled = _ENV.compile(translate(body))
    except (JSONPathError, RecursionError) as exc:
        raise UnsupportedPath(f"`{expression}`: {str(exc).splitlines()[0]}") from None
    if not isinstance(compiled, JSONPath):
        raise UnsupportedPath(f"`{expression}`: unions of whole paths are not supported")
    compiled.segments = tuple(
        _ReachableDescent(env=_ENV, token=s.token, selectors=s.selectors)
        if isinstance(s, JSONPathRecursiveDescentSegment)
        else s
        for s in compiled.segments
    )
    return Path(expression, compiled, mode)


def evaluate(doc: Any, path: Path, *, resolved: bool = True, budget: Budget = UNLIMITED) -> list[Selected]:
    """The nodes a path selects, each once (by where it is written), in document order of first reach."""
    scope = _Scope(doc, resolved, budget)
    return select(scope, path)


class Document:
    """One document seen by many paths: the wrapped nodes are built once and shared."""

    def __init__(self, doc: Any, budget: Budget = UNLIMITED) -> None:
        self.scopes = {flag: _Scope(doc, flag, budget) for flag in (True, False)}

    def select(self, path: Path, *, resolved: bool = True) -> list[Selected]:
        return select(self.scopes[resolved], path)


def select(scope: _Scope, path: Path) -> list[Selected]:
    return select_from(scope, path, scope.view(scope.doc, ""))


def select_from(scope: _Scope, path: Path, root: Any) -> list[Selected]:
    """The nodes a path selects below `root` (a `field` written as a path is relative to its node)."""
    # The filter functions are shared by every lint; each lint's budget travels in its own context
    # (publishing lints in worker threads, several at once).
    token = _BUDGET.set(scope.budget)
    out: dict[str, Selected] = {}
    try:
        for match in path.compiled.finditer(root):
            scope.budget.step()
            for _ in path.mode.replace("~", ""):  # `^`: the parent, as often as written
                if match.parent is not None:
                    match = match.parent
            key = match.parts[-1] if match.parts else None
            value = match.obj
            if isinstance(value, Node | Items):
                pointer = value.pointer
            elif match.parent is not None and isinstance(match.parent.obj, Node | Items):
                pointer = child(match.parent.obj.pointer, str(key))
            else:
                pointer = root.pointer if isinstance(root, Node | Items) else ""
            if path.mode == "~":
                # A key is written in its parent, whatever its value's `$ref` points to.
                value = key
                if match.parent is not None and isinstance(match.parent.obj, Node | Items):
                    pointer = child(match.parent.obj.pointer, str(key))
            if isinstance(key, str | int) or key is None:
                out.setdefault(pointer, Selected(key, value, pointer))
    except JSONPathError as exc:
        raise UnsupportedPath(f"`{path.expression}`: {str(exc).splitlines()[0]}") from None
    finally:
        _BUDGET.reset(token)
    return list(out.values())


# The translation scans the expression once, keeping quoted strings and regular expression literals
# whole, and rewrites what JSONPath Plus writes differently from RFC 9535 and python-jsonpath.
_STRING = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_REGEX_LITERAL = r"/(?:[^/\\\n]|\\.)+/[a-z]*"
_NAME_CHARS = r"[^.\[\]()~^\s]"


def translate(expression: str) -> str:
    out: list[str] = []
    at = 0
    while at < len(expression):
        char = expression[at]
        if expression.startswith(".[", at) and not expression.startswith("..[", at - 1 if at else 0):
            at += 1  # `$.paths.[*]` is `$.paths[*]`
            continue
        if char == "[":
            end = _closing(expression, at)
            out.append(_bracket(expression[at + 1 : end]))
            at = end + 1
            continue
        if char == "." and not expression.startswith("..", at):
            # Every name is quoted: python-jsonpath reads `in`, `and`, `true` ... as words of its own.
            name = re.match(rf"\.({_NAME_CHARS}+)", expression[at:])
            if name and name.group(1) != "*":
                out.append(f"[{_quote(name.group(1))}]")
                at += name.end()
                continue
        if expression.startswith("..", at):
            name = re.match(rf"\.\.({_NAME_CHARS}+)", expression[at:])
            if name and name.group(1) != "*":
                out.append(f"..[{_quote(name.group(1))}]")
                at += name.end()
                continue
        out.append(char)
        at += 1
    return "".join(out)


def _closing(expression: str, start: int) -> int:
    depth, at = 0, start
    while at < len(expression):
        if string := re.compile(_STRING).match(expression, at):
            at = string.end()
            continue
        char = expression[at]
        lit = re.compile(_REGEX_LITERAL).match(expression, at) if char == "/" and depth else None
        if lit and _regex_context(expression, at):
            at = lit.end()
            continue
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                return at
        at += 1
    raise UnsupportedPath(f"`{expression}`: unbalanced brackets")


def _regex_context(expression: str, at: int) -> bool:
    before = expression[:at].rstrip()
    return before.endswith(("(", "=~", ",", "&&", "||", "!"))


def _bracket(inside: str) -> str:
    body = inside.strip()
    if body.startswith("?"):
        return f"[?{_filter(body[1:].strip())}]"
    if body == "*" or re.fullmatch(r"-?\d*(:-?\d*){0,2}", body):
        return f"[{body}]"
    parts = _split_union(body)
    return "[" + ", ".join(_selector(p.strip()) for p in parts) + "]"


def _split_union(body: str) -> list[str]:
    parts, current, at = [], "", 0
    while at < len(body):
        if string := re.compile(_STRING).match(body, at):
            current += string.group()
            at = string.end()
            continue
        if body[at] == ",":
            parts.append(current)
            current = ""
        else:
            current += body[at]
        at += 1
    return [*parts, current]


def _selector(part: str) -> str:
    if part == "*" or re.fullmatch(r"-?\d+", part) or re.fullmatch(_STRING, part):
        return part
    return _quote(part)


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


_JS_METHOD = re.compile(
    r"(?P<subject>#|path\(@\)|@(?:\.[A-Za-z_$][\w$-]*|\[(?:" + _STRING + r")\])*)"
    r"\.(?P<method>match|indexOf|includes|startsWith|endsWith)\((?P<arg>"
    + _STRING
    + "|"
    + _REGEX_LITERAL
    + r")\)(?P<compare>\s*(?:===?|!==?|>=?|<=?)\s*-?\d+)?"
)


def _filter(body: str) -> str:
    """A JSONPath Plus filter (JavaScript) as a python-jsonpath filter; UnsupportedPath if it is not one."""
    if body.startswith("(") and _closing(body, 0) == len(body) - 1:
        body = body[1:-1]
    if re.search(r"@parentProperty|@parent\b|@root|typeof|=>|\bfunction\b|\bnew\b|@\w+\(\)", body):
        raise UnsupportedPath(f"filter `{body}` uses JavaScript this engine does not run")
    pieces: list[str] = []
    at = 0
    # Strings stay as written; everything between them is rewritten.
    for string in re.finditer(_STRING, body):
        pieces.append(_rewrite(body[at : string.start()]))
        pieces.append(string.group())
        at = string.end()
    pieces.append(_rewrite(body[at:]))
    text = "".join(pieces)
    text = _JS_METHOD.sub(_method, text)
    # Keys are strings; JavaScript compares `@property != 204` after turning the key into a number.
    text = re.sub(r"#\s*(>=|<=|<|>|==|!=)\s*(-?\d+(?:\.\d+)?)", r"number(#) \1 \2", text)
    text = re.sub(r"(-?\d+(?:\.\d+)?)\s*(>=|<=|<|>|==|!=)\s*#", r"\1 \2 number(#)", text)
    return f"({text})"


def _member(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return f".{name}"
    return f"[{_quote(name)}]"


def _rewrite(code: str) -> str:
    code = code.replace("===", "==").replace("!==", "!=")
    code = re.sub(r"@property\b", "#", code)
    code = re.sub(r"@path\b", "path(@)", code)
    # `.$ref` and other names JavaScript accepts after a dot are bracketed names in RFC 9535.
    return re.sub(r"(?<=[@\]\w])\.([A-Za-z_$][\w$-]*)", lambda m: _member(m.group(1)), code)


def _method(found: re.Match[str]) -> str:
    subject, method, arg = found.group("subject"), found.group("method"), found.group("arg")
    compare = (found.group("compare") or "").replace(" ", "")
    if arg.startswith("/"):
        pattern = arg
    else:
        literal = arg[1:-1].encode().decode("unicode_escape")
        escaped = re.escape(literal)
        pattern = {"startsWith": f"^{escaped}", "endsWith": f"{escaped}$"}.get(method, escaped)
    call = f"jsre({subject}, {_quote(pattern)})"
    if method == "indexOf":
        # `indexOf(s) === -1` is "absent"; `!== -1`, `> -1`, `>= 0` are "present".
        if compare in ("===-1", "==-1", "<0"):
            return f"!{call}"
        if compare in ("!==-1", "!=-1", ">-1", ">=0"):
            return call
        raise UnsupportedPath(f"`{found.group()}`: only indexOf(...) compared with -1 or 0 is supported")
    if compare:
        raise UnsupportedPath(f"`{found.group()}`: a comparison of a boolean is not supported")
    return call
