"""Fixtures of the fault suite: private servers (tests.faults.servers) that tests may stop and start."""

from tests.faults.servers import private_postgres, private_redis

__all__ = ["private_postgres", "private_redis"]
