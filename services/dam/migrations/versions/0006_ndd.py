"""Near-duplicates (services/dam/duplicates): which assets NDD holds and in which collection (the sync's
outbox: rows are queued as assets finish annotation, moved when their visibility changes, removed when they
are deleted), the near-duplicate pairs found, and the pairs a user dismissed.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- No foreign key: a purged asset's row must outlive it until NDD has forgotten the item.
    CREATE TABLE ndd_entries (
        asset_id bigint PRIMARY KEY,
        kind text NOT NULL,
        collection text NOT NULL,
        -- queued -> indexed | failed; indexed/failed -> removing (deleted or moved) -> row gone
        state text NOT NULL DEFAULT 'queued',
        attempts integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        indexed_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ndd_entries_due ON ndd_entries (state, available_at);

    -- One row per unordered pair (asset_a < asset_b); `segments`: the aligned video segments, if any.
    CREATE TABLE ndd_matches (
        asset_a bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        asset_b bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        score double precision NOT NULL,
        segments jsonb,
        found_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (asset_a, asset_b),
        CHECK (asset_a < asset_b)
    );
    CREATE INDEX ndd_matches_b ON ndd_matches (asset_b);

    -- "Not duplicates" decisions, per user and pair.
    CREATE TABLE ndd_dismissals (
        user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        asset_a bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        asset_b bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, asset_a, asset_b)
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE ndd_dismissals; DROP TABLE ndd_matches; DROP TABLE ndd_entries;")
