"""The ledger's queries. Every state change is a guarded UPDATE (… WHERE state IN …), so two
processes racing on a row cannot both move it, and the transition table is always obeyed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.models import AuditEntry, IntakeRejection, PendingStoreWrite, Run, SystemFlag, utcnow
from omicsflow.domain.routing import NextRow
from omicsflow.domain.states import (
    ACTIVE_STATES,
    PENDING_STATES,
    TRANSITIONS,
    IllegalTransition,
    RunState,
)

OUTAGE_FLAG = "report_store_outage"


def _sources_for(dst: RunState, allowed_from: Iterable[RunState]) -> list[str]:
    sources = [s for s in allowed_from if dst in TRANSITIONS[s]]
    if not sources:
        raise IllegalTransition(next(iter(allowed_from)), dst)
    return [s.value for s in sources]


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ----------------------------------------------------------------- reads
    def get(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def rows_for_report(self, report_id: str) -> list[Run]:
        with self.session() as s:
            stmt = select(Run).where(Run.report_id == report_id).order_by(col(Run.id))
            return list(s.exec(stmt))

    def intake_view(self, report_id: str) -> list[tuple[int, str]]:
        """(generation, state) of a report's rows, oldest first: all dedup needs.

        The hot path of intake (every replayed ADDED passes here), so it reads two columns
        with a plain connection instead of loading whole rows into a session."""
        stmt = (
            select(Run.generation, Run.state)
            .where(Run.report_id == report_id)
            .order_by(col(Run.id))
        )
        with self.engine.connect() as conn:
            return [(int(g), str(s)) for g, s in conn.execute(stmt)]

    def active_for_report(self, report_id: str) -> Run | None:
        with self.session() as s:
            stmt = select(Run).where(
                Run.report_id == report_id, col(Run.state).in_([x.value for x in ACTIVE_STATES])
            )
            return s.exec(stmt).first()

    def list_runs(
        self,
        state: str | None = None,
        report_id: str | None = None,
        service: str | None = None,
        limit: int = 200,
    ) -> list[Run]:
        with self.session() as s:
            stmt = select(Run)
            if state:
                stmt = stmt.where(Run.state == state)
            if report_id:
                stmt = stmt.where(Run.report_id == report_id)
            if service:
                stmt = stmt.where(Run.service == service)
            stmt = stmt.order_by(col(Run.id).desc()).limit(limit)
            return list(s.exec(stmt))

    def count_by_state(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(select(Run.state, func.count()).group_by(Run.state)).all()
            return {state: n for state, n in rows}

    def active_without_flow_run(self) -> list[Run]:
        """Rows created by an intake that died before it created their flow run."""
        with self.session() as s:
            stmt = select(Run).where(
                col(Run.flow_run_id).is_(None),
                col(Run.state).in_([x.value for x in PENDING_STATES]),
            )
            return list(s.exec(stmt))

    def in_flight_remote(self, backends: Sequence[str]) -> list[Run]:
        """Running rows of remote backends: what the poller tracks."""
        with self.session() as s:
            stmt = select(Run).where(
                Run.state == RunState.RUNNING.value, col(Run.backend).in_(list(backends))
            )
            return list(s.exec(stmt.order_by(col(Run.id))))

    def by_backend_run_id(self, backend: str, backend_run_id: str) -> Run | None:
        with self.session() as s:
            stmt = select(Run).where(
                Run.backend == backend,
                Run.backend_run_id == backend_run_id,
                Run.state == RunState.RUNNING.value,
            )
            return s.exec(stmt).first()

    def stale_running(self, heartbeat_before: datetime, backends: Sequence[str]) -> list[Run]:
        """Running rows of process-holding backends whose heartbeat stopped: a dead process."""
        with self.session() as s:
            stmt = select(Run).where(
                Run.state == RunState.RUNNING.value,
                col(Run.backend).in_(list(backends)),
                func.coalesce(Run.heartbeat_at, Run.started_at, Run.created_at) < heartbeat_before,
            )
            rows = list(s.exec(stmt))
            pending = set(s.exec(select(PendingStoreWrite.run_id)).all())
            # A row with a recorded terminal write is not orphaned: the outbox owns it.
            return [r for r in rows if r.id not in pending]

    # ---------------------------------------------------------------- intake
    def create_run(self, row: Run) -> Run | None:
        """Insert a new row; None when a concurrent creator already holds the report's
        active slot or the same position (the unique indexes decide, not the caller)."""
        with self.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return None
            s.refresh(row)
            return row

    def set_flow_run(self, run_id: int, flow_run_id: str) -> None:
        with self.session() as s:
            s.execute(update(Run).where(col(Run.id) == run_id).values(flow_run_id=flow_run_id))
            s.commit()

    def reject(self, report_id: str, reason: str, document: Any) -> None:
        text = json.dumps(document, default=str)[:4000] if document is not None else None
        with self.session() as s:
            s.add(IntakeRejection(report_id=report_id[:256], reason=reason, document=text))
            s.commit()

    def rejections(self, limit: int = 100) -> list[IntakeRejection]:
        with self.session() as s:
            stmt = select(IntakeRejection).order_by(col(IntakeRejection.id).desc()).limit(limit)
            return list(s.exec(stmt))

    # ------------------------------------------------------------ transitions
    def transition(
        self,
        run_id: int,
        dst: RunState,
        allowed_from: Iterable[RunState],
        next_row: NextRow | None = None,
        **values: Any,
    ) -> tuple[bool, Run | None]:
        """Move a row to `dst` if it is still in one of `allowed_from`, and insert its
        successor in the same transaction. Returns (moved, successor)."""
        sources = _sources_for(dst, allowed_from)
        with self.session() as s:
            res = s.execute(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.state).in_(sources))
                .values(state=dst.value, **values)
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                s.rollback()
                return False, None
            successor: Run | None = None
            if next_row is not None:
                cur = s.get(Run, run_id)
                assert cur is not None
                successor = Run(
                    report_id=cur.report_id,
                    service=cur.service,
                    backend=cur.backend,
                    generation=next_row.generation,
                    attempt=next_row.attempt,
                    seq=next_row.seq,
                    system_retries=next_row.system_retries,
                    state=RunState.WAITING_COOLDOWN.value,
                    scheduled_run_at=next_row.scheduled_at,
                    notes=next_row.notes,
                    report_data=cur.report_data,
                )
                s.add(successor)
            s.commit()
            if successor is not None:
                s.refresh(successor)
            return True, successor

    def claim(self, run_id: int, flow_run_id: str | None, now: datetime) -> bool:
        moved, _ = self.transition(
            run_id,
            RunState.RUNNING,
            [RunState.QUEUED, RunState.WAITING_COOLDOWN],
            started_at=now,
            heartbeat_at=now,
            flow_run_id=flow_run_id,
        )
        return moved

    def update_fields(self, run_id: int, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(Run).where(col(Run.id) == run_id).values(**values))
            s.commit()

    def heartbeat(self, run_id: int) -> None:
        self.update_fields(run_id, heartbeat_at=utcnow())

    # ----------------------------------------------------------------- outbox
    def add_pending_write(
        self, run_id: int, report_id: str, target_state: RunState, fields: dict[str, Any]
    ) -> PendingStoreWrite:
        """Record a terminal store write before trying it (idempotent per run)."""
        with self.session() as s:
            existing = s.exec(
                select(PendingStoreWrite).where(PendingStoreWrite.run_id == run_id)
            ).first()
            if existing is not None:
                return existing
            pw = PendingStoreWrite(
                run_id=run_id, report_id=report_id, target_state=target_state.value, fields=fields
            )
            s.add(pw)
            s.commit()
            s.refresh(pw)
            return pw

    def pending_writes(self) -> list[PendingStoreWrite]:
        with self.session() as s:
            return list(s.exec(select(PendingStoreWrite).order_by(col(PendingStoreWrite.id))))

    def pending_write_for(self, run_id: int) -> PendingStoreWrite | None:
        with self.session() as s:
            return s.exec(
                select(PendingStoreWrite).where(PendingStoreWrite.run_id == run_id)
            ).first()

    def note_write_failure(self, pw_id: int, error: str) -> None:
        with self.session() as s:
            pw = s.get(PendingStoreWrite, pw_id)
            if pw is not None:
                pw.tries += 1
                pw.last_error = error[:2000]
                pw.last_try_at = utcnow()
                s.add(pw)
                s.commit()

    def drop_pending_write(self, run_id: int) -> None:
        with self.session() as s:
            pw = s.exec(select(PendingStoreWrite).where(PendingStoreWrite.run_id == run_id)).first()
            if pw is not None:
                s.delete(pw)
                s.commit()

    # ------------------------------------------------------------ flags/audit
    def set_flag(self, key: str, value: str | None) -> None:
        with self.session() as s:
            flag = s.get(SystemFlag, key)
            if value is None:
                if flag is not None:
                    s.delete(flag)
            else:
                flag = flag or SystemFlag(key=key, value=value)
                flag.value = value
                flag.updated_at = utcnow()
                s.add(flag)
            s.commit()

    def get_flag(self, key: str) -> str | None:
        with self.session() as s:
            flag = s.get(SystemFlag, key)
            return flag.value if flag else None

    def audit(
        self,
        actor: str,
        command: str,
        result: str,
        run_id: int | None = None,
        report_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self.session() as s:
            s.add(
                AuditEntry(
                    actor=actor[:128],
                    command=command,
                    result=result,
                    run_id=run_id,
                    report_id=report_id,
                    detail=detail,
                )
            )
            s.commit()

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        with self.session() as s:
            stmt = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
            return list(s.exec(stmt))
