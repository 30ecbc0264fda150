from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from tests.samples import JSON_HEADERS, as_json, projects


@pytest.fixture
async def published(client: AsyncTestClient, publisher_headers: dict[str, str]) -> list[str]:
    """`projects` with versions 1.0.0, 1.1.0 and 2.0.0 published by the delivery team."""
    numbers = ["1.0.0", "1.1.0", "2.0.0"]
    for number in numbers:
        doc = projects(number, description=f"Projects {number}")
        response = await client.post(
            "/api/v1/apis/projects/versions",
            content=as_json(doc),
            headers={**publisher_headers, **JSON_HEADERS},
            params={"owner": "delivery"},
        )
        assert response.status_code == 201, response.text
    return numbers
