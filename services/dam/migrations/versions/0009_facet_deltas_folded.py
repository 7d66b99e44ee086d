"""Folded rows of the kept facet counts are marked, so a read folds when rows appended since the last fold
outnumber the folded ones, not when the rows outnumber the distinct keys: a scope of many owners (an admin's
browse, the public documents of many users) has one row per owner, kind and key even fully folded, so it
was folded again on every read (4-5 ms of a 15 ms browse at 10k assets).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The triggers insert the first seven columns by position: their rows take the default, unfolded.
    op.execute("ALTER TABLE search_facet_deltas ADD COLUMN folded boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE search_facet_deltas DROP COLUMN folded")
