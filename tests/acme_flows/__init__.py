"""A firm's own package of flows, as tests install it: registered through a `charter.flows` entry
point (see `install`), never imported by Charter directly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.flows import Flow, Outcome, RetryPolicy, Step, StepContext

FAST = RetryPolicy(attempts=3, backoff_seconds=0.01, backoff_factor=2.0, jitter=0.5, timeout_seconds=5)


async def upsert_client(context: StepContext) -> dict:
    body = context.input.body or {}
    response = await context.client.post("erp", 1, "/clients", json={"name": body.get("client", "ACME")})
    response.raise_for_status()
    return {"clientId": response.body["id"]}


async def create_project(context: StepContext) -> dict:
    client_id = context.outputs["upsert-client"]["clientId"]
    response = await context.client.post("erp", 1, "/projects", json={"clientId": client_id})
    response.raise_for_status()
    project_id = response.body["id"]
    context.emit("project.created", {"projectId": project_id, "clientId": client_id})
    return {"projectId": project_id}


async def close_project(context: StepContext) -> None:
    response = await context.client.delete("erp", 1, f"/projects/{context.output['projectId']}")
    response.raise_for_status()


async def provision_engagement(context: StepContext) -> dict:
    project_id = context.outputs["create-project"]["projectId"]
    response = await context.client.post("erp", 1, "/engagements", json={"projectId": project_id})
    response.raise_for_status()
    return {"engagementId": response.body["id"]}


def won(flow_input, outputs) -> Outcome:  # type: ignore[no-untyped-def]
    return Outcome(
        status=201,
        body={
            "opportunityId": flow_input.path_params["opportunityId"],
            **outputs["create-project"],
            **outputs["provision-engagement"],
        },
    )


onboarding = Flow(
    name="onboarding",
    owner="delivery",
    title="Won opportunity to project",
    business_keys=("opportunityId", "projectId"),
    sla_seconds=600,
    steps=(
        Step("upsert-client", upsert_client, retry=FAST),
        Step("create-project", create_project, retry=FAST, compensate=close_project),
        Step("provision-engagement", provision_engagement, retry=FAST),
    ),
    result=won,
    client_id="onboarding-flow",
)


# The same steps, undone at once when a step fails for good instead of waiting for an operator.
strict_onboarding = replace(onboarding, name="strict-onboarding", compensate_on_failure=True)


def install(directory: Path) -> Path:
    """Write the dist-info of a package declaring the `onboarding` flow's entry point into `directory`
    (put it on sys.path, or PYTHONPATH for a subprocess)."""
    info = directory / "acme_flows-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-flows\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[charter.flows]\nonboarding = tests.acme_flows:onboarding\n"
        "strict-onboarding = tests.acme_flows:strict_onboarding\n"
    )
    return directory
