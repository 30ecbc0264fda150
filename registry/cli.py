"""`charter`: run the registry, and publish, read and govern contracts in it from a shell or CI."""

from __future__ import annotations

import functools
import re
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

import click
import msgspec
import semver

from contracts.errors import ContractError
from contracts.plural import counted
from contracts.strictness import Strictness

# httpx, rich and the validators are imported where they are used, not here: together they were
# half a second of every command's start-up, and `charter diff` of two files needs none but the
# validators (tests/registry/test_cli_startup.py keeps it so).
if TYPE_CHECKING:
    import httpx
    from litestar import Litestar
    from rich.console import Console
    from rich.table import Table

    from registry.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8080"
MEDIA_TYPES = {".json": "application/json", ".yaml": "application/yaml", ".yml": "application/yaml"}
# Problems that mean "the registry's policy says no" to a valid request: exit 1, as `check` does.
POLICY_REFUSALS = frozenset(
    {"/problems/incompatible-change", "/problems/ruleset-violation", "/problems/scope-taken"}
)


@functools.cache
def stdout() -> Console:
    from rich.console import Console

    # Piped output is read by programs: no column is cut or wrapped to a terminal's width that is not there.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1_000_000)


class CliError(Exception):
    """An expected failure: printed as one line (then the problems it lists, one per line), exit code 2
    (bad input, usage, unreachable) unless told otherwise."""

    exit_code = 2

    def __init__(
        self, message: str, details: list[str] | None = None, *, exit_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.details = details or []
        if exit_code is not None:
            self.exit_code = exit_code


class PolicyRefused(CliError):
    """The registry refused a valid request by policy (breaking change, ruleset): exit code 1."""

    exit_code = 1


@dataclass
class Registry:
    """The registry's REST API, with a token given or fetched by client credentials."""

    url: str
    token: str | None
    client_id: str | None
    client_secret: str | None
    _http: httpx.Client | None = field(default=None, init=False)

    @property
    def http(self) -> httpx.Client:
        import httpx

        if self._http is None:
            self._http = httpx.Client(base_url=self.url.rstrip("/"), timeout=httpx.Timeout(120, connect=5))
        return self._http

    def request(self, method: str, path: str, *, source: str | None = None, **kwargs: Any) -> httpx.Response:
        """The answer; an error answer raises, its issues placed in `source` (the file sent)."""
        response = self._authorized(method, path, **kwargs)
        if response.status_code >= 400:
            raise problem_error(response, source)
        return response

    def request_optional(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer, or None when the registry answers 404."""
        response = self._authorized(method, path, **kwargs)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise problem_error(response)
        return response.json()

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """The answer with its body still to read (a backup is large); an error answer raises."""
        import httpx

        headers = self._with_token(kwargs.pop("headers", None))
        try:
            with self.http.stream(method, path, headers=headers, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_error(response)
                yield response
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the registry at {self.url}: {exc}") from None

    def _authorized(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send(method, path, headers=self._with_token(kwargs.pop("headers", None)), **kwargs)

    def _with_token(self, given: dict[str, str] | None) -> dict[str, str]:
        headers = dict(given or {})
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _bearer(self) -> str | None:
        if self.token is None and self.client_id and self.client_secret:
            response = self._send(
                "POST",
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
            )
            if response.status_code != 200:
                raise CliError(f"cannot get a token for {self.client_id}: {describe_problem(response)}")
            self.token = response.json()["access_token"]
        return self.token

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the registry at {self.url}: {exc}") from None


def problem_error(response: httpx.Response, source: str | None = None) -> CliError:
    """The error an answer of 400 or more stands for: a policy refusal, or anything else; its issues
    placed in `source` (the file sent)."""
    try:
        kind = response.json().get("type")
    except (ValueError, AttributeError):  # not JSON, or not an object
        kind = None
    error = PolicyRefused if kind in POLICY_REFUSALS else CliError
    return error(describe_problem(response, inline=False), problem_lines(response, source))


def describe_problem(response: httpx.Response, *, inline: bool = True) -> str:
    """One line from an RFC 9457 problem (or an OAuth error, or whatever the server sent).

    `inline`: the first issues in brackets on the same line (else `problem_lines` lists them all).
    """
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:200] or response.reason_phrase}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    if "error" in body and "title" not in body:
        return f"HTTP {response.status_code}: {body.get('error_description') or body['error']}"
    text = f"HTTP {response.status_code} {body.get('title', '')}: {body.get('detail') or ''}".rstrip(": ")
    issues = body.get("errors") or []
    if issues and not inline:
        noun = "problem" if len(issues) == 1 else "problems"
        text += f" ({len(issues)} {noun}:)"
    elif issues:
        shown = "; ".join(f"{i.get('pointer') or '/'}: {i.get('message')}" for i in issues[:3])
        more = f" (+{len(issues) - 3} more)" if len(issues) > 3 else ""
        text += f" [{shown}{more}]"
    return " ".join(text.split())


def problem_lines(response: httpx.Response, source: str | None = None) -> list[str]:
    """Each issue of a problem answer on a line of its own, where an editor can jump to it."""
    try:
        body = response.json()
    except ValueError:
        return []
    issues = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(issues, list):
        return []
    return [
        issue_line(
            str(i.get("pointer", "")),
            str(i.get("message", "")),
            i.get("file") or source,
            i.get("line"),
            i.get("column"),
        )
        for i in issues
        if isinstance(i, dict)
    ]


def issue_line(pointer: str, message: str, file: str | None, line: int | None, column: int | None) -> str:
    """`FILE:LINE:COLUMN: POINTER: MESSAGE`, as compilers write it, with what is known of the place."""
    place = ":".join(str(part) for part in (file, line, column) if part is not None)
    return f"{place + ': ' if place else ''}{pointer or '/'}: {message}"


listing_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the registry's answer as it is, for scripts.",
)


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")


def new_table(*columns: str) -> Table:
    from rich.table import Table

    return Table(*columns)


def add_row(table: Table, *cells: str) -> None:
    from rich.markup import escape

    # Cells hold titles and names from the registry: brackets in them are text, not rich markup.
    table.add_row(*(escape(cell) for cell in cells))


def media_type_of(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        return "application/zip"
    try:
        return MEDIA_TYPES[path.suffix.lower()]
    except KeyError:
        raise CliError(f"{path}: expected a .json, .yaml, .yml or .zip file") from None


@click.group()
@click.option("--url", envvar="CHARTER_URL", default=DEFAULT_URL, show_default=True, help="Registry URL.")
@click.option("--token", envvar="CHARTER_TOKEN", default=None, help="Bearer token.")
@click.option("--client-id", envvar="CHARTER_CLIENT_ID", default=None, help="Client id, to fetch a token.")
@click.option("--client-secret", envvar="CHARTER_CLIENT_SECRET", default=None, help="Client secret.")
@click.pass_context
def cli(
    ctx: click.Context, url: str, token: str | None, client_id: str | None, client_secret: str | None
) -> None:
    """Charter: API contract registry and policy gateway."""
    ctx.obj = Registry(url=url, token=token, client_id=client_id, client_secret=client_secret)


@cli.command()
@click.option("--host", envvar="CHARTER_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="CHARTER_PORT", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    envvar="CHARTER_WORKERS",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes on this port (more than 1: PostgreSQL and NATS; see registry.workers).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the registry (configuration from CHARTER_* variables). CHARTER_PUBLIC_URL, the URL clients
    use, defaults to http://HOST:PORT."""
    import uvicorn

    from registry import workers as worker_processes
    from registry.http_limits import header_deadline_protocol
    from registry.settings import Settings

    try:
        settings = worker_processes.prepare(Settings.from_env(host=host, port=port), workers)
        app = configured_app(settings)  # with workers too: a bad setting fails here, said once
    except ValueError as exc:  # a malformed setting: the allow-list, a secrets key, a number
        raise CliError(str(exc)) from None
    if workers > 1:
        worker_processes.serve(host, port, workers)
        return
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        http=header_deadline_protocol(settings.header_timeout_seconds),
    )


def configured_app(settings: Settings | None = None) -> Litestar:
    """The app `charter serve` runs, from CHARTER_* variables unless `settings` are given; as a factory
    it serves other ASGI servers too (bench/gateway.py runs it under granian)."""
    from gateway.flows.registration import load_flows
    from registry.app import create_app
    from registry.demo.flows import FLOWS as DEMO_FLOWS
    from registry.settings import Settings

    settings = settings or Settings.from_env()
    flows = load_flows()
    if settings.demo:  # the demo's process APIs are bound to these; only a serving process hosts them
        flows |= {flow.name: flow for flow in DEMO_FLOWS}
    return create_app(settings, flows=flows)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--api", "api_name", required=True, help="API name in the registry.")
@click.option("--version", default=None, help="Version to publish (default: the document's info.version).")
@click.option("--owner", default=None, help="Owning team, to create the API if it does not exist.")
@click.option("--root", default=None, help="Root file of a zip bundle.")
@click.option("--draft", is_flag=True, help="Store as a draft, not yet published.")
@click.option("--force", is_flag=True, help="Admins: publish despite incompatible changes (audited).")
@click.pass_obj
def publish(
    registry: Registry,
    file: Path,
    api_name: str,
    version: str | None,
    owner: str | None,
    root: str | None,
    draft: bool,
    force: bool,
) -> None:
    """Publish a contract document (JSON, YAML or a zip bundle). Exit 1 when the registry refuses it by
    policy (a breaking change without the version it needs, the governance ruleset, a taken scope), 2 on
    bad input."""
    body = publish_file(
        registry, file, api_name, version=version, owner=owner, root=root, draft=draft, force=force
    )
    click.echo(f"{body['outcome']} {body['api']} {body['version']} ({body['state']}, {body['fingerprint']})")


def publish_file(
    registry: Registry,
    file: Path,
    api_name: str,
    *,
    version: str | None = None,
    owner: str | None = None,
    root: str | None = None,
    draft: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    params = {k: v for k, v in {"version": version, "owner": owner, "root": root}.items() if v}
    if draft:
        params["draft"] = "true"
    if force:
        params["force"] = "true"
    response = registry.request(
        "POST",
        f"/api/v1/apis/{api_name}/versions",
        source=str(file),
        content=file.read_bytes(),
        headers={"Content-Type": media_type_of(file)},
        params=params,
    )
    body = response.json()
    body["outcome"] = "published" if response.status_code == 201 else "unchanged"
    return body


@cli.command()
@click.argument("name")
@listing_format
@click.pass_obj
def versions(registry: Registry, name: str, fmt: str) -> None:
    """List the versions of an API."""
    items = registry.request("GET", f"/api/v1/apis/{name}/versions").json()["items"]
    if fmt == "json":
        return print_json(items)
    table = new_table("version", "state", "kind", "published", "by", "sunset")
    for item in items:
        deprecation = item.get("deprecation") or {}
        add_row(
            table,
            item["version"],
            item["state"],
            f"{item['kind'] or ''} {item['spec_version'] or ''}".strip(),
            item["published_at"][:19],
            item["published_by"],
            deprecation.get("sunset") or "",
        )
    stdout().print(table)


@cli.command()
@click.argument("name")
@click.argument("version")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="yaml", show_default=True)
@click.pass_obj
def get(registry: Registry, name: str, version: str, fmt: str) -> None:
    """Print a contract document (VERSION may be `latest`)."""
    accept = "application/yaml" if fmt == "yaml" else "application/json"
    response = registry.request("GET", f"/api/v1/apis/{name}/versions/{version}", headers={"Accept": accept})
    sys.stdout.buffer.write(response.content)
    if not response.content.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")


@cli.command()
@click.argument("name")
@click.argument("version")
@click.option("--sunset", required=True, help="Date after which the version may be removed (YYYY-MM-DD).")
@click.option("--replacement", default=None, help="The version consumers should move to.")
@click.option("--reason", default=None)
@click.pass_obj
def deprecate(
    registry: Registry, name: str, version: str, sunset: str, replacement: str | None, reason: str | None
) -> None:
    """Deprecate a version with a sunset date."""
    payload = {"sunset": sunset, "replacement": replacement, "reason": reason}
    body = registry.request(
        "POST",
        f"/api/v1/apis/{name}/versions/{version}/deprecate",
        json={k: v for k, v in payload.items() if v is not None},
    ).json()
    click.echo(f"deprecated {name} {body['version']} (sunset {body['deprecation']['sunset']})")


@cli.command()
@click.argument("name")
@click.argument("version")
@click.option("--emergency", is_flag=True, help="Admins: retire a published version without deprecating it.")
@click.option("--reason", default=None, help="Why, for the audit log (required with --emergency).")
@click.pass_obj
def retire(registry: Registry, name: str, version: str, emergency: bool, reason: str | None) -> None:
    """Retire a deprecated version: the gateway answers 410 for it."""
    payload = {"emergency": emergency, "reason": reason} if emergency else {}
    body = registry.request("POST", f"/api/v1/apis/{name}/versions/{version}/retire", json=payload).json()
    click.echo(f"retired {name} {body['version']}")


@cli.command()
@click.argument("query", required=False, default="")
@click.option("--owner")
@click.option("--layer", type=click.Choice(["system", "process", "experience", "canonical"]))
@click.option("--domain")
@click.option("--tag")
@click.option("--kind", type=click.Choice(["openapi", "asyncapi", "json-schema"]))
@click.option("--state", type=click.Choice(["draft", "published", "deprecated", "retired"]))
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@listing_format
@click.pass_obj
def search(registry: Registry, query: str, limit: int, fmt: str, **filters: str | None) -> None:
    """Search APIs by text and filters."""
    params: dict[str, Any] = {k: v for k, v in filters.items() if v}
    if query:
        params["q"] = query
    params["limit"] = limit
    page = registry.request("GET", "/api/v1/search", params=params).json()
    if fmt == "json":
        return print_json(page)
    table = new_table("name", "title", "owner", "layer", "domain", "kind", "latest")
    for hit in page["items"]:
        add_row(
            table,
            hit["name"],
            hit["title"],
            hit["owner"],
            hit["layer"],
            hit["domain"] or "",
            hit["kind"] or "",
            hit["latest_version"] or "",
        )
    stdout().print(table)
    click.echo(f"{len(page['items'])} of {counted(page['total'], 'API')}")


_REGISTRY_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]{0,99})@(?P<version>[0-9A-Za-z.+-]+)$")


VALIDITY = click.Choice(["full", "syntax-only", "none"])


@cli.command()
@click.argument("base")
@click.argument("revision")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default=None,
    help="Exit 1 when a change of this level (or worse) is found.",
)
@click.option(
    "--api", "api_name", default=None, help="Check files as strictly as this API of the registry does."
)
@click.option(
    "--validity",
    type=VALIDITY,
    default=None,
    help="How strictly files are checked.  [default: the API's level with NAME@VERSION or --api, else full]",
)
@click.option("--no-validate", is_flag=True, hidden=True, help="Same as --validity none.")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Severity policy file: YAML or JSON (rule levels, off included, and open enums or unions), or "
    "oasdiff's severity-levels text (`rule-id err|warn|info|none` a line).",
)
@click.pass_obj
def diff(
    registry: Registry,
    base: str,
    revision: str,
    fmt: str,
    fail_on: str | None,
    api_name: str | None,
    validity: str | None,
    no_validate: bool,
    policy_file: Path | None,
) -> None:
    """Compare two contracts: files (JSON or YAML) or NAME@VERSION in the registry.

    Exit 1 when a file breaks the validity level or --fail-on finds a change, 2 on bad input."""
    from contracts.diff import Level, diff_documents
    from contracts.diff.render import as_json, as_markdown, as_text

    if no_validate:
        validity = "none"
    names = [api_name] + [m["name"] for m in map(_REGISTRY_REF.match, (base, revision)) if m]
    level = _validity(registry, validity, next((n for n in names if n), None))
    policy = _policy(policy_file) if policy_file is not None else None
    base_doc = _contract(registry, base, level=level)
    revision_doc = _contract(registry, revision, level=level)
    try:
        report = diff_documents(base_doc, revision_doc, policy=policy)
    except ContractError as exc:
        raise CliError(exc.detail) from None
    if fmt == "json":
        sys.stdout.buffer.write(as_json(report))
    else:
        sys.stdout.write(as_markdown(report) if fmt == "markdown" else as_text(report))
    failing = {"error": {Level.ERROR}, "warning": {Level.ERROR, Level.WARNING}}.get(fail_on or "", set())
    if any(change.level in failing for change in report.changes):
        raise SystemExit(1)


@cli.command()
@click.argument("file")
@click.option(
    "--ruleset",
    "ruleset_ref",
    default=None,
    help="Ruleset file (YAML or JSON), or a built-in one.  [default: charter:recommended]",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True
)
@click.pass_obj
def lint(registry: Registry, file: str, ruleset_ref: str | None, fmt: str) -> None:
    """Check a contract against governance rules: a file (JSON or YAML) or NAME@VERSION.

    Exit code 1 when a finding has severity `error`.
    """
    from contracts.lint import Severity
    from contracts.lint import lint as lint_document
    from contracts.lint.render import as_json, as_sarif, as_text

    ruleset = _ruleset(ruleset_ref)
    document = _contract(registry, file, level=Strictness.NONE)
    try:
        findings = lint_document(document, ruleset)
    except ContractError as exc:
        raise CliError(f"{file}: {exc.detail}") from None
    if fmt == "json":
        sys.stdout.buffer.write(as_json(findings))
    elif fmt == "sarif":
        sys.stdout.buffer.write(as_sarif(findings, uri=file, ruleset=ruleset))
    else:
        sys.stdout.write(as_text(findings))
    if any(finding.severity is Severity.ERROR for finding in findings):
        raise SystemExit(1)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--api", "api_name", required=True, help="API name in the registry.")
@click.option(
    "--base", type=click.Path(dir_okay=False, path_type=Path), help="Compare with this file, offline."
)
@click.option("--ruleset", "ruleset_ref", default=None, help="Ruleset file or built-in name.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "junit"]),
    default="text",
    show_default=True,
)
@click.option("--fail-on-impact", is_flag=True, help="Fail when a registered consumer is affected.")
@click.option(
    "--validity",
    type=VALIDITY,
    default=None,
    help="How strictly files are checked.  [default: the API's level]",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Severity policy file.  [default: the API's policy in the registry; none with --base]",
)
@click.pass_obj
def check(
    registry: Registry,
    file: Path,
    api_name: str,
    base: Path | None,
    ruleset_ref: str | None,
    fmt: str,
    fail_on_impact: bool,
    validity: str | None,
    policy_file: Path | None,
) -> None:
    """Validate, lint, diff against the latest published version (or --base), check the semver bump
    and list affected consumers. Exit 1 on a policy failure, 2 on bad input."""
    from contracts.diff import diff_documents
    from registry import check as checking

    if not file.is_file():
        raise CliError(f"{file}: no such file")
    online = base is None
    # Offline (--base) the registry is not asked, so its level is not known: full unless given.
    level = _validity(registry, validity, api_name if online else None)
    document = _contract(registry, str(file), level=level)
    if online:
        base_document = registry.request_optional(
            "GET", f"/api/v1/apis/{api_name}/versions/latest", headers={"Accept": "application/json"}
        )
    else:
        base_document = _contract(registry, str(base), level=level)
    ruleset = _ruleset(ruleset_ref) if ruleset_ref or not online else _registry_ruleset(registry, api_name)
    if policy_file is not None:
        policy = _policy(policy_file)
    else:
        policy = _registry_policy(registry, api_name) if online else None
    from contracts.lint import lint as lint_document

    try:
        findings = lint_document(document, ruleset)
        diff = diff_documents(base_document, document, policy=policy) if base_document is not None else None
    except ContractError as exc:
        raise CliError(f"{file}: {exc.detail}") from None
    affected = None
    if online:
        impact = registry.request_optional(
            "POST",
            f"/api/v1/apis/{api_name}/impact",
            content=file.read_bytes(),
            headers={"Content-Type": media_type_of(file)},
        )
        affected = msgspec.convert((impact or {}).get("affected", []), list[checking.AffectedConsumer])
    report = checking.verdict(
        api=api_name,
        file=str(file),
        version=_version_of(document),
        base_version=_version_of(base_document) if base_document is not None else None,
        findings=findings,
        diff=diff,
        affected=affected,
        fail_on_impact=fail_on_impact,
    )
    if fmt == "json":
        sys.stdout.buffer.write(checking.as_json(report))
    elif fmt == "junit":
        sys.stdout.buffer.write(checking.as_junit(report))
    elif fmt == "markdown":
        sys.stdout.write(checking.as_markdown(report))
    else:
        sys.stdout.write(checking.as_text(report, colour=sys.stdout.isatty()))
    if not report.passed:
        raise SystemExit(1)


@cli.command()
@click.argument("contract", metavar="NAME@VERSION")
@click.option("--base-url", required=True, help="Base URL of the deployment under test.")
@click.option("--target-token", default=None, help="Bearer token for the API under test (not the registry).")
@click.option("--target-client-id", default=None, help="Client id, to fetch a token for the API under test.")
@click.option("--target-client-secret", default=None, help="Client secret for --target-client-id.")
@click.option("--token-url", default=None, help="Token endpoint.  [default: BASE-URL origin + /oauth/token]")
@click.option("--max-examples", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option("--no-record", is_flag=True, help="Do not record the result on the version.")
@click.pass_obj
def conformance(
    registry: Registry,
    contract: str,
    base_url: str,
    target_token: str | None,
    target_client_id: str | None,
    target_client_secret: str | None,
    token_url: str | None,
    max_examples: int,
    junit: Path | None,
    no_record: bool,
) -> None:
    """Test a live deployment against NAME@VERSION with schemathesis (valid requests only: every answer
    must be declared by the contract) and record the result on the version. Registry credentials come
    from the global options; --target-* authenticate to the API under test. Exit 1 on failures."""
    from registry import conformance as running

    try:
        name, version, document = running.fetch_contract(registry, contract)
        target = running.Target.connect(
            base_url,
            token=target_token,
            client_id=target_client_id,
            client_secret=target_client_secret,
            token_url=token_url,
            max_examples=max_examples,
        )
        report = running.Suite(f"{name}@{version}", document, target).run()
    except running.ConformanceError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(running.as_text(report))
    if junit is not None:
        junit.write_bytes(running.as_junit(report))
    if not no_record:
        path = f"/api/v1/apis/{name}/versions/{version}/conformance"
        try:
            registry.request("POST", path, json=report.as_record())
        except CliError as exc:
            raise CliError(f"{contract}: the run was not recorded: {exc}") from None
    if not report.passed:
        raise SystemExit(1)


def _version_of(document: Any) -> str | None:
    info = document.get("info") if isinstance(document, dict) else None
    version = info.get("version") if isinstance(info, dict) else None
    return str(version) if version is not None else None


def _registry_ruleset(registry: Registry, api_name: str) -> Any:
    """The ruleset the registry would apply on publish: the owning team's, the global one, or the
    recommended built-in when neither is stored."""
    from contracts.lint import BUILTIN_RULESETS, load_ruleset

    api = registry.request_optional("GET", f"/api/v1/apis/{api_name}")
    paths = ([f"/api/v1/teams/{api['owner']}/ruleset"] if api else []) + ["/api/v1/rulesets/global"]
    for path in paths:
        response = registry.request_optional("GET", path)
        if response is not None:
            try:
                return load_ruleset(response["content"])
            except ContractError as exc:
                raise CliError(f"the registry's ruleset at {path} is unusable: {exc.detail}") from None
    return BUILTIN_RULESETS["charter:recommended"]


def _policy(path: Path) -> Any:
    from contracts.diff import load_policy

    try:
        return load_policy(path.read_bytes())
    except OSError as exc:
        raise CliError(f"{path}: cannot read the policy: {exc.strerror or exc}") from None
    except ContractError as exc:
        raise CliError(f"{path}: {exc.detail}") from None


def _registry_policy(registry: Registry, api_name: str) -> Any:
    """The severity policy the registry would judge with on publish: the API's over the global one."""
    from contracts.diff import SeverityPolicy

    found = registry.request_optional("GET", f"/api/v1/apis/{api_name}/diff-policy/effective")
    return msgspec.convert(found["policy"], SeverityPolicy) if found else None


def _ruleset(ref: str | None) -> Any:
    """A built-in ruleset by name (`charter:minimal`), or one read from a file."""
    from contracts.lint import BUILTIN_RULESETS, load_ruleset

    if ref is None or ref in BUILTIN_RULESETS:
        return BUILTIN_RULESETS[ref or "charter:recommended"]
    path = Path(ref)
    try:
        return load_ruleset(path.read_bytes())
    except OSError as exc:
        raise CliError(f"{path}: cannot read the ruleset: {exc.strerror or exc}") from None
    except ContractError as exc:
        raise CliError(f"{path}: {exc.detail}") from None


def _validity(registry: Registry, given: str | None, api_name: str | None) -> Strictness:
    """The level files are checked at: as given, else the API's (as publish checks it), else full."""
    if given is not None:
        return Strictness(given)
    if api_name is None:
        return Strictness.FULL
    api = registry.request_optional("GET", f"/api/v1/apis/{api_name}")
    return Strictness(api["validity"]) if api else Strictness.FULL


def _contract(registry: Registry, ref: str, *, level: Strictness) -> Any:
    """A document from a file, checked at `level`, or NAME@VERSION from the registry (checked there)."""
    from contracts.kinds import detect_kind
    from contracts.loading import load_document
    from contracts.validation import validate_document

    path = Path(ref)
    match = _REGISTRY_REF.match(ref)
    if not path.is_file() and match:
        response = registry.request(
            "GET",
            f"/api/v1/apis/{match['name']}/versions/{match['version']}",
            headers={"Accept": "application/json"},
        )
        return msgspec.json.decode(response.content)
    if not path.is_file():
        raise CliError(f"{ref}: no such file, and not NAME@VERSION")
    data = path.read_bytes()
    media_type = MEDIA_TYPES.get(path.suffix.lower())
    try:
        document = load_document(data, media_type=media_type)
        if level is Strictness.NONE:
            return document
        kind = detect_kind(document)
        issues = validate_document(document, kind) if level is Strictness.FULL else []
    except ContractError as exc:
        raise CliError(f"{path}: {exc.detail}") from None
    if issues:
        from contracts.positions import with_positions

        errors = counted(len(issues), "error")
        raise PolicyRefused(
            f"{path}: invalid {kind}, {errors} (--validity syntax-only skips this check)",
            [
                issue_line(i.pointer, i.message, str(path), i.line, i.column)
                for i in with_positions(issues, data, media_type=media_type)
            ],
        )
    return document


@cli.command(name="import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--owner", default=None, help="Team that owns APIs created by the import (a DIRECTORY).")
@click.option("--merge", is_flag=True, help="Backups: add the versions of APIs already stored here.")
@click.pass_obj
def import_dir(registry: Registry, path: Path, owner: str | None, merge: bool) -> None:
    """Publish every contract under a DIRECTORY (DIR/<api>.yaml, DIR/<api>.zip or DIR/<api>/<any>.yaml),
    or restore a backup FILE.zip made by `charter export` (admins). Exit 1 when part of a backup is
    refused (an API already stored, without --merge) or in conflict (a version stored otherwise)."""
    if path.is_file():
        return import_backup(registry, path, merge=merge)
    if owner is None:
        raise CliError("--owner is required to import a directory of contracts")
    directory = path
    plan = list(import_plan(directory))
    if not plan:
        raise CliError(f"{directory}: no .json, .yaml, .yml or .zip files found")
    failures = refusals = 0
    counts = {"published": 0, "unchanged": 0}
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("publishing", total=len(plan))
        for api_name, file in plan:
            try:
                body = publish_file(registry, file, api_name, owner=owner)
                counts[body["outcome"]] += 1
                progress.console.print(
                    f"{body['outcome']:>9} {api_name} {body['version']} ({file.name})", markup=False
                )
            except CliError as exc:
                failures += 1
                refusals += isinstance(exc, PolicyRefused)
                progress.console.print(f"   failed {api_name} ({file.name}): {exc}", markup=False)
                for line in exc.details:
                    progress.console.print(f"     {line}", markup=False)
            progress.advance(task)
    click.echo(f"{counts['published']} published, {counts['unchanged']} unchanged, {failures} failed")
    if failures:
        error = PolicyRefused if refusals == failures else CliError
        raise error(f"{failures} of {counted(len(plan), 'file')} could not be published")


def import_backup(registry: Registry, file: Path, *, merge: bool) -> None:
    from registry.interop.backup_transfer import is_backup, upload_backup

    if not is_backup(file):
        raise CliError(
            f"{file}: not a Charter backup (a zip with a manifest.json); `charter publish` sends one contract"
        )
    report = upload_backup(registry, file, merge=merge)
    troubles = 0
    for api in report["apis"]:
        if api["outcome"] == "refused":
            troubles += 1
            click.echo(f"  refused {api['name']}: {api['reason']}")
            continue
        added, present = api["versions_added"], api["versions_present"]
        click.echo(f"{api['outcome']:>9} {api['name']}: {added} versions added, {present} already here")
        for conflict in api["conflicts"]:
            troubles += 1
            click.echo(f" conflict {api['name']} {conflict}")
    added = ", ".join(f"{count} {table}" for table, count in report["added"].items()) or "nothing"
    click.echo(f"imported {file}: {added}")
    if troubles:
        raise PolicyRefused(
            f"{troubles} APIs or versions were refused or in conflict; nothing was overwritten"
        )


@cli.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.pass_obj
def export(registry: Registry, file: Path) -> None:
    """Write the whole registry into a backup FILE.zip (admins): restore it with `charter import`."""
    from registry.interop.backup_transfer import download_backup

    try:
        size = download_backup(registry, file)
    except OSError as exc:
        raise CliError(f"{file}: cannot write the backup: {exc.strerror or exc}") from None
    with zipfile.ZipFile(file) as archive:
        counts = msgspec.json.decode(archive.read("manifest.json"))["counts"]
    shown = ", ".join(f"{counts[t]} {t}" for t in ("teams", "apis", "api_versions", "audit_events"))
    click.echo(f"exported {shown} to {file} ({size} bytes)")


@cli.command(name="import-backstage")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.pass_obj
def import_backstage(registry: Registry, path: Path) -> None:
    """Publish the `kind: API` entities of Backstage catalog files (a FILE, or every .yaml under a
    DIRECTORY) with their definitions: inline, or `$text: ./file` inside that directory (no URL is
    fetched). Teams come from spec.owner (created when the token may). Exit 2 on bad input."""
    from registry.interop.backstage_files import CatalogInputError, read_entities
    from registry.interop.backstage_import import EntityOutcome, import_entities

    try:
        entities, others = read_entities(path)
    except CatalogInputError as exc:
        raise CliError(str(exc)) from None
    for line in others:
        click.echo(f"  skipped {line}")

    def report(outcome: EntityOutcome) -> None:
        click.echo(f"{outcome.outcome:>9} {outcome.entity.name} ({outcome.entity.source}): {outcome.detail}")
        for line in getattr(outcome.error, "details", None) or []:
            click.echo(f"     {line}")

    outcomes = import_entities(registry, entities, report)
    tally = {k: sum(o.outcome == k for o in outcomes) for k in ("imported", "unchanged", "skipped", "failed")}
    click.echo(", ".join(f"{n} {k}" for k, n in tally.items()))
    failed = [o for o in outcomes if o.outcome == "failed"]
    if failed:
        refused = all(isinstance(o.error, PolicyRefused) for o in failed)
        error = PolicyRefused if refused else CliError
        entities_count = counted(len(outcomes), "API entity", "API entities")
        raise error(f"{len(failed)} of {entities_count} could not be imported")


def import_plan(directory: Path) -> Iterator[tuple[str, Path]]:
    """(API name, file) in publishing order: a folder's versions in ascending semver order."""
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in (*MEDIA_TYPES, ".zip"):
            yield entry.stem, entry
        elif entry.is_dir():
            files = [f for f in entry.iterdir() if f.is_file() and f.suffix.lower() in MEDIA_TYPES]
            for file in sorted(files, key=_declared_version):
                yield entry.name, file


def _declared_version(file: Path) -> semver.Version:
    """Sort key: the document's info.version; unreadable ones go first and fail on publish."""
    try:
        raw = file.read_bytes()
        doc = msgspec.json.decode(raw) if file.suffix == ".json" else msgspec.yaml.decode(raw)
        return semver.Version.parse(str(doc["info"]["version"]))
    except Exception:  # any unreadable file: the publish step reports it properly
        return semver.Version(0)


@cli.group()
def alerts() -> None:
    """Alerting: Prometheus rules generated from the APIs' SLAs and the flows."""


@alerts.command(name="rules")
@click.pass_obj
def alerts_rules(registry: Registry) -> None:
    """Print the Prometheus rules file (burn-rate, latency and flow alerts) for `rule_files:`."""
    click.echo(registry.request("GET", "/api/v1/alerts/prometheus-rules").text, nl=False)


@cli.group()
def flows() -> None:
    """Flows: registered flows, their runs (the exception queue), retry, replay and cancel."""


@flows.command(name="list")
@listing_format
@click.pass_obj
def flows_list(registry: Registry, fmt: str) -> None:
    """Registered flows with their steps, bound operations and runs by state."""
    items = registry.request("GET", "/api/v1/flows").json()["items"]
    if fmt == "json":
        return print_json(items)
    stdout().print(flows_table(items))


def flows_table(items: list[dict[str, Any]]) -> Table:
    """`GET /api/v1/flows` as a table: which runs are late is what an operator acts on, so each flow's
    newest late runs are named by their business keys (by run id to readers who may not see them)."""
    table = new_table("flow", "owner", "steps", "bound to", "runs", "late", "late runs")
    for item in items:
        bound = ", ".join(f"{o['api']}:{o['operation_id'] or '*'}" for o in item["operations"])
        runs = " ".join(f"{state}={count}" for state, count in sorted(item["runs"].items()))
        steps = " > ".join(step["name"] for step in item["steps"])
        late_runs = [
            " ".join(f"{name}={value}" for name, value in run["keys"].items()) or run["id"]
            for run in item["late_runs"]
        ]
        if item["late"] > len(late_runs):  # the answer names the newest few
            late_runs.append(f"{item['late'] - len(late_runs)} more")
        late = str(item["late"])
        add_row(table, item["name"], item["owner"], steps, bound, runs, late, "; ".join(late_runs))
    return table


@flows.command(name="runs")
@click.option("--flow", default=None, help="Only runs of this flow.")
@click.option(
    "--state",
    "run_state",
    type=click.Choice(["running", "succeeded", "failed", "cancelled", "compensated"]),
    default=None,
    help="Only runs in this state (failed: the exception queue).",
)
@click.option("--key", default=None, help="Only runs with this business key value.")
@click.option("--key-name", default=None, help="Only runs whose business key of this name matches --key.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100))
@listing_format
@click.pass_obj
def flows_runs(
    registry: Registry,
    flow: str | None,
    run_state: str | None,
    key: str | None,
    key_name: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Runs, newest first."""
    wanted = {"flow": flow, "state": run_state, "key": key, "key_name": key_name, "limit": limit}
    params = {k: v for k, v in wanted.items() if v}
    page = registry.request("GET", "/api/v1/flows/runs", params=params).json()
    if fmt == "json":
        return print_json(page)
    table = new_table("run", "flow", "state", "keys", "failed step", "started", "late")
    for run in page["items"]:
        keys = " ".join(f"{name}={value}" for name, value in run["keys"].items())
        late = "late" if run["late"] else ""
        add_row(
            table,
            run["id"],
            run["flow"],
            run["state"],
            keys,
            run["failed_step"] or "",
            run["created_at"][:19],
            late,
        )
    stdout().print(table)
    click.echo(f"{len(page['items'])} of {counted(page['total'], 'run')}")


@flows.command(name="show")
@click.argument("run_id")
@listing_format
@click.pass_obj
def flows_show(registry: Registry, run_id: str, fmt: str) -> None:
    """One run, step by step, with the last error of a failed step."""
    run = registry.request("GET", f"/api/v1/flows/runs/{quote(run_id, safe='')}").json()
    if fmt == "json":
        return print_json(run)
    click.echo(
        f"{run['id']} {run['flow']} {run['state']}{' (late)' if run['late'] else ''} trace {run['trace_id']}"
    )
    table = new_table("step", "state", "attempts", "started", "ended", "error / output")
    for step in run["steps"]:
        error = step.get("error") or {}
        detail = error.get("message") or step.get("output_summary") or ""
        started, ended = (step.get(f) or "" for f in ("started_at", "ended_at"))
        add_row(table, step["name"], step["state"], str(step["attempts"]), started[:23], ended[:23], detail)
    stdout().print(table)


@flows.command(name="retry")
@click.argument("run_id")
@click.pass_obj
def flows_retry(registry: Registry, run_id: str) -> None:
    """Resume a failed run at its failed step."""
    registry.request("POST", f"/api/v1/flows/runs/{quote(run_id, safe='')}/retry")
    click.echo(f"retrying {run_id}")


@flows.command(name="replay")
@click.argument("run_id")
@click.option("--from-step", required=True, help="The step the new run starts at.")
@click.pass_obj
def flows_replay(registry: Registry, run_id: str, from_step: str) -> None:
    """Start a new run from a step, with the recorded outputs of the steps before it."""
    body = registry.request(
        "POST", f"/api/v1/flows/runs/{quote(run_id, safe='')}/replay", json={"from_step": from_step}
    ).json()
    click.echo(f"replaying {run_id} from {from_step} as {body['run']}")


@flows.command(name="cancel")
@click.argument("run_id")
@click.pass_obj
def flows_cancel(registry: Registry, run_id: str) -> None:
    """Cancel a failed run: its completed steps are compensated in reverse."""
    registry.request("POST", f"/api/v1/flows/runs/{quote(run_id, safe='')}/cancel")
    click.echo(f"cancelling {run_id}")


@cli.group()
def keys() -> None:
    """The built-in issuer's signing keys in the registry's database (CHARTER_DATABASE_URL and
    CHARTER_SECRETS_KEY as for `charter serve`)."""


@keys.command(name="rotate")
def keys_rotate() -> None:
    """Make a new signing key; the old one stays published until the tokens it signed have expired."""
    import getpass

    from registry import signing_keys

    async def run(sessionmaker: Any, box: Any, settings: Any) -> Any:
        return await signing_keys.rotate(sessionmaker, box, actor=f"operator:{getpass.getuser()}")

    try:
        key = _with_key_store(run)
    except signing_keys.RotationConflict as exc:
        raise CliError(str(exc)) from None
    click.echo(f"generation {key.generation} ({key.kid}) signs from now on; replicas follow within 30 s")


@keys.command(name="list")
@listing_format
def keys_list(fmt: str) -> None:
    """Stored signing keys, newest first: the one that signs, those still published, those expired."""
    from registry import signing_keys

    async def run(sessionmaker: Any, box: Any, settings: Any) -> Any:
        return await signing_keys.stored_keys(sessionmaker, token_lifetime=settings.token_lifetime)

    stored = _with_key_store(run)
    if fmt == "json":
        return print_json(stored)
    table = new_table("generation", "kid", "state", "created", "retired")
    for key in stored:
        retired = key.retired_at.isoformat()[:19] if key.retired_at else ""
        add_row(table, str(key.generation), key.kid, key.state, key.created_at.isoformat()[:19], retired)
    stdout().print(table)


def _with_key_store(action: Any) -> Any:
    """Run `action(sessionmaker, secret_box, settings)` against the database of CHARTER_* settings."""
    import asyncio

    from registry.db.engine import create_engine, migrate, session_factory
    from registry.secret_box import SecretBox
    from registry.settings import Settings

    try:
        settings = Settings.from_env()
        box = SecretBox.from_settings(settings)
    except ValueError as exc:  # a malformed setting, a missing secrets key
        raise CliError(str(exc)) from None
    if settings.signing_key_file:
        raise CliError(
            "CHARTER_SIGNING_KEY_FILE is set: that file's key signs and the database keeps none "
            "(unset it to keep keys in the database, or replace the file to change the key)"
        )

    async def run() -> Any:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine, box)
            return await action(session_factory(engine), box, settings)
        finally:
            await engine.dispose()

    from sqlalchemy.exc import SQLAlchemyError

    try:
        return asyncio.run(run())
    except (OSError, ConnectionError) as exc:
        raise CliError(f"cannot reach the database: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {' '.join(str(exc.orig or exc).split())[:300]}") from None
    except ValueError as exc:  # the secrets key does not open the stored keys
        raise CliError(str(exc)) from None


def fail(message: str, details: list[str] | None = None, exit_code: int = 2) -> NoReturn:
    click.echo(f"charter: error: {message}", err=True)
    for line in details or ():
        click.echo(f"  {line}", err=True)
    raise SystemExit(exit_code)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="charter", standalone_mode=False)
    except CliError as exc:
        fail(str(exc), exc.details, exc.exit_code)
    except click.UsageError as exc:
        fail(exc.format_message())
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.Abort:
        fail("aborted")


if __name__ == "__main__":
    main()
