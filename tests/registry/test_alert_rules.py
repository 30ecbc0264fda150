"""The Prometheus rules Charter generates from SLAs and flows: `promtool check rules` accepts them, and
`promtool test rules` fires the page on series that burn the budget and nothing on healthy ones."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.demo.flows import FLOWS
from tests.registry.support import bearer, charter, charter_server, fetch_token, make_settings

# Installed by the Makefile when missing (Debian's `prometheus` package ships it).
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.fixture
def app(tmp_path) -> Litestar:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/rules.db", demo=True)
    return create_app(settings, flows={flow.name: flow for flow in FLOWS})


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def rules(client: AsyncTestClient, tmp_path: Path) -> Path:
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    answer = await client.get("/api/v1/alerts/prometheus-rules", headers=reader)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/yaml")
    path = tmp_path / "charter-rules.yaml"
    path.write_bytes(answer.content)
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alert(rules: dict[str, Any], name: str, **labels: str) -> dict[str, Any]:
    """The expected firing alert: the rule's labels and annotations, as promtool compares them."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name and all(rule["labels"].get(k) == v for k, v in labels.items()):
                return {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}
    raise AssertionError(f"no rule {name} {labels}")


def requests(api: str, status: str, values: str) -> dict[str, str]:
    labels = f'api="{api}",version="1.0.0",operation="GET /x",status="{status}"'
    return {"series": f"charter_gateway_requests_total{{{labels}}}", "values": values}


def latency(api: str, le: str, values: str, outcome: str = "served") -> dict[str, str]:
    labels = f'api="{api}",version="1.0.0",operation="GET /x",outcome="{outcome}",le="{le}"'
    return {"series": f"charter_gateway_request_duration_seconds_bucket{{{labels}}}", "values": values}


async def test_generated_rules_pass_promtool_check(rules: Path) -> None:
    checked = promtool("check", "rules", rules.name, cwd=rules.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    groups = {group["name"] for group in yaml.safe_load(rules.read_text())["groups"]}
    # Every demo API the gateway serves with an SLA, and the flows; event APIs have no gateway series.
    assert {"charter-slo-hcm", "charter-slo-projects", "charter-flows"} <= groups
    assert "charter-slo-invoice-events" not in groups


async def test_burning_series_fire_the_page_and_healthy_ones_nothing(rules: Path) -> None:
    generated = yaml.safe_load(rules.read_text())
    # hcm (99.5 %, p99 500 ms): 100 of 1,100 counted answers a minute are 5xx (9 %: burn rate 18),
    # among 100,000 throttled ones a minute that would hide the burn if 429s were counted; its served
    # answers are slow, its refused ones (fast) would hide that from the p99 if they were counted.
    # projects (99.9 %, p99 300 ms): 0.05 % errors (burn rate 0.5), fast answers.
    burning = [
        requests("hcm", "200", "0+1000x120"),
        requests("hcm", "503", "0+100x120"),
        requests("hcm", "429", "0+100000x120"),
        latency("hcm", "0.005", "0x120"),
        latency("hcm", "0.5", "0x120"),
        latency("hcm", "1", "0+100x120"),
        latency("hcm", "+Inf", "0+100x120"),
        *(latency("hcm", le, "0+100000x120", "refused") for le in ("0.005", "0.5", "1", "+Inf")),
        requests("projects", "200", "0+1000x120"),
        requests("projects", "500", "0+0.5x120"),
        requests("projects", "429", "0+50x120"),
        latency("projects", "0.1", "0+1000x120"),
        latency("projects", "+Inf", "0+1000x120"),
        {"series": 'charter_flow_runs_late{flow="lead-to-project"}', "values": "2x120"},
        {"series": 'charter_flow_runs_parked_total{flow="lead-to-project"}', "values": "0 0 0 1x117"},
        {"series": 'charter_flow_runs_late{flow="time-to-bill"}', "values": "0x120"},
        {"series": 'charter_flow_runs_parked_total{flow="time-to-bill"}', "values": "0x120"},
    ]
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": burning,
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "CharterApiErrorBudgetBurn",
                        "exp_alerts": [
                            alert(generated, "CharterApiErrorBudgetBurn", api="hcm", severity="page"),
                            alert(generated, "CharterApiErrorBudgetBurn", api="hcm", severity="ticket"),
                        ],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "CharterApiLatencyP99",
                        "exp_alerts": [alert(generated, "CharterApiLatencyP99", api="hcm")],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "CharterFlowRunsLate",
                        "exp_alerts": [alert(generated, "CharterFlowRunsLate", flow="lead-to-project")],
                    },
                    {
                        "eval_time": "10m",
                        "alertname": "CharterFlowRunsParked",
                        "exp_alerts": [alert(generated, "CharterFlowRunsParked", flow="lead-to-project")],
                    },
                    # The parked run is more than 15 minutes old: no longer news.
                    {"eval_time": "60m", "alertname": "CharterFlowRunsParked", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    requests("hcm", "200", "0+1000x120"),
                    requests("hcm", "503", "0+1x120"),  # 0.1 %: within the 0.5 % budget
                    latency("hcm", "0.25", "0+1000x120"),
                    latency("hcm", "+Inf", "0+1000x120"),
                ],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "CharterApiErrorBudgetBurn", "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "CharterApiLatencyP99", "exp_alerts": []},
                ],
            },
        ],
    }
    test_file = rules.parent / "charter-rules.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = promtool("test", "rules", test_file.name, cwd=rules.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def test_promtool_test_fails_when_the_page_is_expected_of_a_healthy_series(rules: Path) -> None:
    """The unit test above could fail: expecting the page on healthy series is reported as wrong."""
    generated = yaml.safe_load(rules.read_text())
    tests = {
        "rule_files": [rules.name],
        "tests": [
            {
                "interval": "1m",
                "input_series": [requests("hcm", "200", "0+1000x120"), requests("hcm", "503", "0+1x120")],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "CharterApiErrorBudgetBurn",
                        "exp_alerts": [
                            alert(generated, "CharterApiErrorBudgetBurn", api="hcm", severity="page")
                        ],
                    }
                ],
            }
        ],
    }
    test_file = rules.parent / "wrong.test.yaml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    assert promtool("test", "rules", test_file.name, cwd=rules.parent).returncode != 0


def test_cli_prints_the_rules(tmp_path: Path) -> None:
    with charter_server(tmp_path, demo="1") as url:
        printed = charter("alerts", "rules", url=url)
        refused = charter("alerts", "rules", url=url, secret="wrong")
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "printed.yaml").write_text(printed.stdout)
    checked = promtool("check", "rules", "printed.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "charter-slo-hcm" in printed.stdout
    assert refused.returncode == 2
    assert refused.stderr.startswith("charter: error:") and len(refused.stderr.strip().splitlines()) == 1
