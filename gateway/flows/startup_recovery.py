"""DBOS's recovery of this executor's runs at launch in one statement per batch of runs instead of
one transaction per run (DBOS 3.4.0 only, like `step_check`).

On launch DBOS hands each run it finds pending under this executor back to its internal queue
(`reenqueue_for_recovery`: PENDING -> ENQUEUED, only while still PENDING under this executor), from
one background thread, a transaction per run: 1,000 runs were 1,000 transactions in a row, 7.6% of
the recovering process's Python time (py-spy --gil, bench.flows --recovery 1000), while the queue
found the runs a few at a time. Here the same UPDATE takes a batch of runs at once, with the same
conditions per row, so a run another executor has meanwhile dequeued is left alone as before.

A patch of DBOS internals, hence: for exactly the DBOS version it was written against (any other
keeps DBOS's own thread; tests/gateway/test_flows_recovery.py fails when the version moves), for an
unsharded system database only; a batch that fails is recovered by DBOS's own code, run by run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dbos._dbos as dbos_module
import sqlalchemy as sa
from dbos._recovery import startup_recovery_thread as _original
from dbos._sys_db import GetPendingWorkflowsOutput, SystemDatabase, WorkflowStatusString, db_retry
from dbos._utils import INTERNAL_QUEUE_NAME, GlobalParams

from gateway.flows import step_check

if TYPE_CHECKING:
    from dbos import DBOS

BATCH = 500  # runs per statement: its parameter list stays far below any driver's limit


def install(enabled: bool = True) -> bool:
    """Batch DBOS's startup recovery (for the whole process), or put DBOS's own back; whether it is
    batched."""
    patched = enabled and step_check.applies()
    dbos_module.startup_recovery_thread = _startup_recovery_thread if patched else _original  # type: ignore[attr-defined]
    return patched


def _startup_recovery_thread(dbos: DBOS, pending: list[GetPendingWorkflowsOutput]) -> None:
    sys_db = dbos._sys_db
    if sys_db.sharded:
        _original(dbos, pending)
        return
    executor = GlobalParams.executor_id
    for first in range(0, len(pending), BATCH):
        batch = pending[first : first + BATCH]
        try:
            _reenqueue(sys_db, [run.workflow_id for run in batch], executor)
        except Exception:
            dbos.logger.exception("recovering %d runs at once failed: recovering them one by one", len(batch))
            _original(dbos, batch)


@db_retry()
def _reenqueue(sys_db: SystemDatabase, run_ids: list[str], executor: str) -> None:
    status = sys_db.tables.workflow_status
    with sys_db.engine.begin() as connection:
        connection.execute(
            sa.update(status)
            .where(
                status.c.workflow_uuid.in_(run_ids),
                status.c.status == WorkflowStatusString.PENDING.value,
                status.c.executor_id == executor,
            )
            .values(
                status=WorkflowStatusString.ENQUEUED.value,
                owner_xid=None,
                started_at_epoch_ms=None,
                updated_at=sys_db._now_ms_sql(),
                queue_name=sa.func.coalesce(status.c.queue_name, INTERNAL_QUEUE_NAME),
            )
        )
