"""Who holds an annotation job. Each DAM installation (data folder) has a node id; its workers claim jobs
under it and renew the claims by heartbeat, so the lease runs from the last heartbeat, not from the claim.
A DAM that starts reclaims at once the jobs its previous run still held (that run is dead: the node's lock
file is ours now), instead of waiting out their lease; jobs of other, vanished nodes go back when their
lease ends."""

from __future__ import annotations

import fcntl
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import text

log = logging.getLogger(__name__)


@dataclass
class Node:
    id: str
    # True when no other live process holds this data folder's node (its previous runs are dead).
    exclusive: bool
    _lock: IO[str]

    def release(self) -> None:
        """Gives the data folder's node up (otherwise the kernel does when this process ends)."""
        self._lock.close()


def acquire_node(dam_dir: Path) -> Node:
    """The data folder's node id, held by an advisory lock the kernel drops when this process dies."""
    dam_dir.mkdir(parents=True, exist_ok=True)
    lock = (dam_dir / "node.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # Another process runs on this folder: a throwaway identity, and no reclaiming of anybody's jobs.
        log.warning("another process holds %s (another DAM, or the supervisor of MAAM_DAM__PROCESSES > 1); "
                    "annotation claims use a temporary node id", dam_dir)
        return Node(f"temporary-{uuid.uuid4()}", False, lock)
    id_file = dam_dir / "node-id"
    if not id_file.exists():
        id_file.write_text(str(uuid.uuid4()))
    return Node(id_file.read_text().strip(), True, lock)


# Up to :n jobs per claim (a worker's batch).
# A claim is a lease renewed by heartbeats: a worker that dies leaves the row to be claimed again once the
# lease has run out since its last heartbeat.
CLAIM = text("""
UPDATE annotation_jobs j SET state = 'running', attempts = j.attempts + 1, claimed_by = :node,
    heartbeat_at = now(), locked_until = now() + make_interval(secs => :lease)
WHERE j.id IN (
    SELECT id FROM annotation_jobs
    WHERE (state = 'queued' AND available_at <= now()) OR (state = 'running' AND locked_until < now())
    ORDER BY available_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
RETURNING j.id, j.asset_id, j.attempts
""")
HEARTBEAT = text("""
UPDATE annotation_jobs SET heartbeat_at = now(), locked_until = now() + make_interval(secs => :lease)
WHERE id = ANY(:ids) AND state = 'running' AND claimed_by = :node
""")
# Undoes a claim: the job is free again now, and the interrupted try does not count as an attempt.
RELEASE = text("""
UPDATE annotation_jobs SET state = 'queued', locked_until = NULL, claimed_by = NULL,
    attempts = GREATEST(attempts - 1, 0)
WHERE id = :id AND state = 'running' RETURNING asset_id
""")
# At startup: the previous run of this node died holding these. The attempt stays counted, so a job that
# kills the DAM every time still ends after max_attempts.
RECLAIM = text("""
UPDATE annotation_jobs SET state = 'queued', locked_until = NULL, claimed_by = NULL, available_at = now()
WHERE state = 'running' AND claimed_by = :node
RETURNING id, asset_id
""")
