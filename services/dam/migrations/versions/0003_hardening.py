"""Hardening: exactly one first admin (a one-row table whose insert decides it), and annotation jobs that
name the DAM run holding them and its last heartbeat (a restart reclaims its own jobs at once).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- At most one row, ever: the registration whose insert lands here is the installation's first admin.
    CREATE TABLE dam_first_admin (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        -- Kept when that user is deleted: a later registration never becomes admin by itself.
        user_id bigint REFERENCES users(id) ON DELETE SET NULL
    );
    -- An existing installation already has its first user.
    INSERT INTO dam_first_admin (user_id)
        SELECT id FROM users ORDER BY role = 'admin' DESC, id LIMIT 1;

    ALTER TABLE annotation_jobs ADD COLUMN claimed_by text, ADD COLUMN heartbeat_at timestamptz;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE annotation_jobs DROP COLUMN claimed_by, DROP COLUMN heartbeat_at;
    DROP TABLE dam_first_admin;
    """)
