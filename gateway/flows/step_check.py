"""DBOS's check before each step in one round trip instead of four (PostgreSQL, DBOS 3.4.0 only).

Before a step runs, DBOS looks whether the run was cancelled and whether the step's outcome is
already recorded (`SystemDatabase.check_operation_execution`): BEGIN, a SELECT of the run's status,
a SELECT of the step's row, COMMIT, four round trips in a transaction of its own. Under PostgreSQL's
READ COMMITTED each SELECT sees its own snapshot anyway, so one SELECT of both (the run's status
joined to its step's row) in autocommit reads at least as consistently, and answers the same: the
recorded outcome, or None, or DBOS's own errors for a cancelled run, a missing one, or a step of
another name. Measured side by side (bench.flows_compare, `sync+check4` against `sync`, load 17):
a bare four-step DBOS run cost 12.8 -> 11.0 ms of CPU in the process, 3.5 -> 3.1 ms in PostgreSQL.

A patch of DBOS internals, hence: for exactly the DBOS version it was written against (any other
keeps DBOS's own method; tests/gateway/test_flows_step_check.py fails when the version moves, so
the patch is looked at again), for unsharded PostgreSQL only (every other system database calls
DBOS's method), and everything but the SQL is DBOS's own code path.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import sqlalchemy as sa
from dbos._error import DBOSUnexpectedStepError, DBOSWorkflowCancelledError
from dbos._sys_db import SystemDatabase, WorkflowStatusString, db_retry

DBOS_VERSION = "3.4.0"
_original = SystemDatabase.check_operation_execution


def applies() -> bool:
    return importlib.metadata.version("dbos") == DBOS_VERSION


def install(enabled: bool = True) -> bool:
    """Patch DBOS's check (for the whole process: DBOS is one per process), or put DBOS's own back;
    whether it is patched."""
    patched = enabled and applies()
    SystemDatabase.check_operation_execution = (  # type: ignore[method-assign]
        _check_operation_execution if patched else _original
    )
    return patched


def _statement(sys_db: SystemDatabase) -> sa.Select[Any]:
    """Built once per system database: SQLAlchemy then finds its compiled form by the statement's
    cached key, as it does for DBOS's own hot statements."""
    statement = getattr(sys_db, "_charter_step_check", None)
    if statement is None:
        status, outputs = sys_db.tables.workflow_status, sys_db.tables.operation_outputs
        step = sa.and_(
            outputs.c.workflow_uuid == status.c.workflow_uuid,
            outputs.c.function_id == sa.bindparam("function_id"),
        )
        statement = (
            sa.select(
                status.c.status,
                outputs.c.function_id,  # NULL: no row for the step (the key is never NULL)
                outputs.c.output,
                outputs.c.error,
                outputs.c.function_name,
                outputs.c.child_workflow_id,
                outputs.c.serialization,
            )
            .select_from(status.outerjoin(outputs, step))
            .where(status.c.workflow_uuid == sa.bindparam("workflow_id"))
        )
        sys_db._charter_step_check = statement  # type: ignore[attr-defined]
    return statement


def _check_operation_execution(
    self: SystemDatabase,
    workflow_id: str,
    function_id: int,
    function_name: str,
    *,
    owner_key: str | None = None,
) -> Any:
    if self.sharded or self._is_sqlite or self._is_cockroach or self.engine.dialect.name != "postgresql":
        return _original(self, workflow_id, function_id, function_name, owner_key=owner_key)
    self._reject_shard_key(workflow_id, owner_key)
    return _check_in_one_statement(self, workflow_id, function_id, function_name)


@db_retry()
def _check_in_one_statement(
    self: SystemDatabase, workflow_id: str, function_id: int, function_name: str
) -> Any:
    statement = _statement(self)
    with self.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        row = autocommit.execute(statement, {"workflow_id": workflow_id, "function_id": function_id}).first()
    # From here on, what DBOS's `_check_operation_execution_txn` does with its two results.
    assert row is not None, f"Error: Workflow {workflow_id} does not exist"
    status, recorded_id, output, error, recorded_name, child_workflow_id, serialization = row
    if status == WorkflowStatusString.CANCELLED.value:
        raise DBOSWorkflowCancelledError(f"Workflow {workflow_id} is cancelled. Aborting function.")
    if recorded_id is None:
        return None
    if function_name != recorded_name:
        raise DBOSUnexpectedStepError(
            workflow_id=workflow_id,
            step_id=function_id,
            expected_name=function_name,
            recorded_name=recorded_name,
        )
    return {
        "output": output,
        "error": error,
        "serialization": serialization,
        "child_workflow_id": child_workflow_id,
        "child_shard_key": None,
    }
