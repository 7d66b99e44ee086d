"""Live updates: PostgreSQL notifies `maam_asset_events` when an asset is added, changes state, title, tags,
visibility or moderation, is deleted, or gets an annotation result, so every DAM process can push it to the
browsers that may see the asset (services/dam/events.py, `GET /api/events`) instead of their polling.

The payload carries what the visibility check needs (asset id, owner, visibility), never content.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE FUNCTION maam_notify_asset(asset bigint, owner bigint, vis text) RETURNS void
    LANGUAGE sql AS $$
        SELECT pg_notify('maam_asset_events', json_build_object('id', asset, 'owner', owner, 'vis', vis)::text)
    $$;

    CREATE FUNCTION maam_asset_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.annotation_state IS NOT DISTINCT FROM OLD.annotation_state
            AND NEW.title IS NOT DISTINCT FROM OLD.title AND NEW.tags IS NOT DISTINCT FROM OLD.tags
            AND NEW.description IS NOT DISTINCT FROM OLD.description
            AND NEW.visibility IS NOT DISTINCT FROM OLD.visibility
            AND NEW.moderation IS NOT DISTINCT FROM OLD.moderation
            AND NEW.deleted_at IS NOT DISTINCT FROM OLD.deleted_at THEN
            RETURN NULL;
        END IF;
        -- A change of visibility is told under both, so the owner's other sessions and the public both hear it.
        IF TG_OP = 'UPDATE' AND NEW.visibility IS DISTINCT FROM OLD.visibility THEN
            PERFORM maam_notify_asset(OLD.id, OLD.owner_id, OLD.visibility);
        END IF;
        PERFORM maam_notify_asset(NEW.id, NEW.owner_id, NEW.visibility);
        RETURN NULL;
    END $$;

    CREATE FUNCTION maam_annotation_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM maam_notify_asset(a.id, a.owner_id, a.visibility) FROM assets a WHERE a.id = NEW.asset_id;
        RETURN NULL;
    END $$;

    CREATE TRIGGER assets_notify AFTER INSERT OR UPDATE ON assets
        FOR EACH ROW EXECUTE FUNCTION maam_asset_changed();
    CREATE TRIGGER annotations_notify AFTER INSERT OR UPDATE OF state ON annotations
        FOR EACH ROW EXECUTE FUNCTION maam_annotation_changed();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER annotations_notify ON annotations;
    DROP TRIGGER assets_notify ON assets;
    DROP FUNCTION maam_annotation_changed();
    DROP FUNCTION maam_asset_changed();
    DROP FUNCTION maam_notify_asset(bigint, bigint, text);
    """)
