"""A real `charter serve` killed with SIGKILL in the middle of a run: the next start resumes the run at
its last completed step, and the step that was in flight is made again with the same idempotency key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests import acme_flows
from tests.gateway.test_flows import ERP, FLOW_CLIENT, ONBOARDING, Erp
from tests.loopback import serving
from tests.registry.support import ADMIN, CLIENTS, LOOPBACK, charter, charter_process


def token(url: str, client_id: str, secret: str) -> dict[str, str]:
    response = httpx.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def until(condition, what: str, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def publish_onboarding(url: str, admin: dict[str, str], erp_url: str) -> None:
    """The `delivery` team's ERP system API (an HTTP upstream at `erp_url`) and the onboarding process
    API bound to its flow, answering 202 at once so that a run can be caught mid-step."""
    team = httpx.post(f"{url}/api/v1/teams", json={"name": "delivery", "members": []}, headers=admin)
    assert team.status_code == 201, team.text
    for name, document in (("erp", ERP), ("onboarding", ONBOARDING)):
        published = httpx.post(
            f"{url}/api/v1/apis/{name}/versions",
            content=json.dumps(document),
            params={"owner": "delivery"},
            headers={**admin, "Content-Type": "application/json"},
        )
        assert published.status_code == 201, published.text
    bindings = {
        "erp": {"kind": "http", "url": erp_url},
        "onboarding": {"kind": "flow", "flow": "onboarding", "wait_seconds": 0},
    }
    for name, binding in bindings.items():
        bound = httpx.put(f"{url}/api/v1/apis/{name}/adapter", json=binding, headers=admin)
        assert bound.status_code == 200, bound.text


def test_a_run_killed_mid_step_resumes_after_restart(tmp_path: Path) -> None:
    site = str(acme_flows.install(tmp_path / "site"))
    erp = Erp()
    erp.held.add("POST /engagements")
    settings = {"egress_allow": LOOPBACK, "access_log": "0", "clients": json.dumps([*CLIENTS, FLOW_CLIENT])}
    with serving(erp) as erp_url:
        with charter_process(tmp_path, python_path=site, **settings) as (
            url,
            process,
        ):
            admin = token(url, *ADMIN)
            publish_onboarding(url, admin, erp_url)

            def started() -> bool:
                response = httpx.post(
                    f"{url}/gw/onboarding/v1/opportunities/opp-1/won",
                    json={"client": "ACME"},
                    headers={"Idempotency-Key": "restart"},
                )
                return response.status_code == 202

            until(started, "the gateway to route to the flow")
            until(lambda: erp.calls["POST /engagements"] == 1, "the third step to be in flight")
            process.kill()
            process.wait(timeout=10)
        erp.released.set()
        with charter_process(tmp_path, python_path=site, **settings) as (url, _):
            admin = token(url, *ADMIN)

            def succeeded() -> bool:
                runs = httpx.get(f"{url}/api/v1/flows/runs", params={"key": "opp-1"}, headers=admin).json()
                return bool(runs["items"]) and runs["items"][0]["state"] == "succeeded"

            until(succeeded, "the run to resume and finish")
            runs = charter("flows", "runs", "--key", "opp-1", url=url)
            assert runs.returncode == 0, runs.stderr
            assert "succeeded" in runs.stdout and "1 of 1 run\n" in runs.stdout
            named = charter("flows", "runs", "--key", "opp-1", "--key-name", "opportunityId", url=url)
            assert named.returncode == 0 and "1 of 1 run\n" in named.stdout, named.stderr
            misnamed = charter("flows", "runs", "--key", "opp-1", "--key-name", "projectId", url=url)
            assert misnamed.returncode == 0 and "0 of 0 runs" in misnamed.stdout, misnamed.stderr
            run_id = httpx.get(f"{url}/api/v1/flows/runs", headers=admin).json()["items"][0]["id"]
            shown = charter("flows", "show", run_id, url=url, COLUMNS="200")
            assert shown.returncode == 0 and "provision-engagement" in shown.stdout, shown.stderr
            listed = charter("flows", "list", url=url)
            assert listed.returncode == 0 and "onboarding" in listed.stdout, listed.stderr
            refused = charter("flows", "retry", run_id, url=url)
            assert refused.returncode == 2 and "only a failed run" in refused.stderr
    assert erp.calls["POST /clients"] == 1 and erp.calls["POST /projects"] == 1
    assert erp.calls["POST /engagements"] == 2
    in_flight, again = (h["idempotency-key"] for h in erp.headers[2:4])
    assert in_flight == again
