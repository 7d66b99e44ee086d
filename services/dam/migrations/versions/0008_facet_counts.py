"""Facet counts kept as they change: browsing the library (no words, no filters but type and owner) reads its
facets from `search_facet_deltas` instead of unnesting every visible document (165 ms at 100k assets, most of
a page view), and so does a kNN with no other filter, whose facets are those of the documents with a vector
in its space: each document lists its spaces (`search_docs.space_ids`, written with its vectors) and counts
in space 0 (every document) and in each of them.

Statement-level triggers on `search_docs` append one row per (owner, public, kind, facet, key) that a statement
changed, with the net change in count. Appending never waits on another writer (a counter row updated in place
would be a lock every upload takes); the search backend folds the rows of an owner together when a read finds
them spread out (services/dam/search/facet_counts.py).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    ALTER TABLE search_docs ADD COLUMN space_ids integer[] NOT NULL DEFAULT '{}';
    UPDATE search_docs d SET space_ids = v.ids
    FROM (SELECT asset_id, array_agg(space_id ORDER BY space_id) AS ids FROM search_vectors GROUP BY asset_id) v
    WHERE v.asset_id = d.asset_id;

    CREATE TABLE search_facet_deltas (
        space_id integer NOT NULL,  -- 0: every document; else the documents with a vector in that space
        owner_id bigint NOT NULL,
        public boolean NOT NULL,
        kind text NOT NULL,
        facet text NOT NULL,
        key text NOT NULL,
        n bigint NOT NULL
    );
    CREATE INDEX search_facet_deltas_public ON search_facet_deltas (space_id, public, kind);
    CREATE INDEX search_facet_deltas_owner ON search_facet_deltas (space_id, owner_id);

    -- The facet values one document counts under: the same as the search backend's scan (duplicates in an
    -- array count twice there too). Columns, not the whole row: PostgreSQL 16 fails to plan an inlined SQL
    -- function of a whole-row reference under UNION ALL ("variable not found in subplan target list").
    CREATE FUNCTION maam_facet_keys(kind text, nsfw boolean, meme boolean, uploaded_at timestamptz,
                                    objects text[], annotation_types text[], labels text[])
    RETURNS TABLE (facet text, key text) LANGUAGE sql STABLE AS $$
        SELECT 'kind', kind
        UNION ALL SELECT 'nsfw', coalesce(nsfw::text, 'unknown')
        UNION ALL SELECT 'meme', coalesce(meme::text, 'unknown')
        UNION ALL SELECT 'month', to_char(uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM')
        UNION ALL SELECT 'objects', o FROM unnest(objects) o
        UNION ALL SELECT 'annotation_types', t FROM unnest(annotation_types) t
        UNION ALL SELECT 'people', l FROM unnest(labels) l WHERE starts_with(l, E'\x1fperson:')
    $$;

    CREATE FUNCTION maam_facet_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO search_facet_deltas
            SELECT s.space_id, d.owner_id, d.visibility = 'public', d.kind, k.facet, k.key, count(*)
            FROM new_docs d, unnest(array_prepend(0, d.space_ids)) s (space_id), maam_facet_keys(
                d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k
            GROUP BY 1, 2, 3, 4, 5, 6;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO search_facet_deltas
            SELECT s.space_id, d.owner_id, d.visibility = 'public', d.kind, k.facet, k.key, -count(*)
            FROM old_docs d, unnest(array_prepend(0, d.space_ids)) s (space_id), maam_facet_keys(
                d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k
            GROUP BY 1, 2, 3, 4, 5, 6;
        ELSE
            -- An update that leaves the facets alone (a new caption, a re-annotation) nets to nothing.
            INSERT INTO search_facet_deltas
            SELECT space_id, owner_id, public, kind, facet, key, sum(n) FROM (
                SELECT s.space_id, d.owner_id, d.visibility = 'public' AS public, d.kind, k.facet, k.key, 1 AS n
                FROM new_docs d, unnest(array_prepend(0, d.space_ids)) s (space_id), maam_facet_keys(
                d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k
                UNION ALL
                SELECT s.space_id, d.owner_id, d.visibility = 'public', d.kind, k.facet, k.key, -1
                FROM old_docs d, unnest(array_prepend(0, d.space_ids)) s (space_id), maam_facet_keys(
                d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k) c
            GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
        END IF;
        RETURN NULL;
    END $$;

    CREATE TRIGGER search_docs_facets_insert AFTER INSERT ON search_docs
        REFERENCING NEW TABLE AS new_docs FOR EACH STATEMENT EXECUTE FUNCTION maam_facet_counts_changed();
    CREATE TRIGGER search_docs_facets_update AFTER UPDATE ON search_docs
        REFERENCING OLD TABLE AS old_docs NEW TABLE AS new_docs
        FOR EACH STATEMENT EXECUTE FUNCTION maam_facet_counts_changed();
    CREATE TRIGGER search_docs_facets_delete AFTER DELETE ON search_docs
        REFERENCING OLD TABLE AS old_docs FOR EACH STATEMENT EXECUTE FUNCTION maam_facet_counts_changed();

    INSERT INTO search_facet_deltas
    SELECT s.space_id, d.owner_id, d.visibility = 'public', d.kind, k.facet, k.key, count(*)
    FROM search_docs d, unnest(array_prepend(0, d.space_ids)) s (space_id), maam_facet_keys(
                d.kind, d.nsfw, d.meme, d.uploaded_at, d.objects, d.annotation_types, d.labels) k
            GROUP BY 1, 2, 3, 4, 5, 6;
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER search_docs_facets_delete ON search_docs;
    DROP TRIGGER search_docs_facets_update ON search_docs;
    DROP TRIGGER search_docs_facets_insert ON search_docs;
    DROP FUNCTION maam_facet_counts_changed();
    DROP FUNCTION maam_facet_keys(text, boolean, boolean, timestamptz, text[], text[], text[]);
    DROP TABLE search_facet_deltas;
    ALTER TABLE search_docs DROP COLUMN space_ids;
    """)
