"""Moderation: an owner's or admin's verdict on an asset (`safe` or `sensitive`) overrides what the NSFW and
disturbing-content models said, for search, facets and blur; who gave it and when.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE assets
        ADD COLUMN moderation text CHECK (moderation IN ('safe', 'sensitive')),
        ADD COLUMN moderated_by bigint REFERENCES users(id) ON DELETE SET NULL,
        ADD COLUMN moderated_at timestamptz;
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE assets DROP COLUMN moderation, DROP COLUMN moderated_by, DROP COLUMN moderated_at;")
