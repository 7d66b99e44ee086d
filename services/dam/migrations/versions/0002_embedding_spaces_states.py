"""Embedding spaces of any dimension side by side; annotation states pending -> running -> done | failed.

- `embedding_spaces`: one row per embedding model (the space), with its dimension. Vectors of every space
  live in untyped `vector` columns; each space gets its own partial HNSW index (pgvector indexes one
  dimension at a time), so adding a model of another size needs no reset.
- `search_vectors`: the postgres search backend's whole-image vectors, one per (asset, space), replacing
  `search_docs.embedding` / `embedding_model` (copied over).
- `search_sync`: a version per asset taken before each search-document build; writes of an older build
  never replace a newer one, and a reindex replays what changed while it ran.
- `assets.annotation_state`: `partial` (which meant both "in progress" and "finished with failures")
  becomes `running` or `pending` while a job is active, `done` otherwise; `annotation_failed_models`
  counts the models that failed.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE embedding_spaces (
        id serial PRIMARY KEY,
        -- The embedding model whose vectors are comparable with each other (Embedding.model).
        name text NOT NULL UNIQUE,
        dim integer NOT NULL CHECK (dim > 0),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE asset_vectors ALTER COLUMN embedding TYPE vector;
    ALTER TABLE detector_prototypes ALTER COLUMN embedding TYPE vector;
    INSERT INTO embedding_spaces (name, dim)
        SELECT model, max(vector_dims(embedding)) FROM (
            SELECT model, embedding FROM asset_vectors
            UNION ALL SELECT model, embedding FROM detector_prototypes
            UNION ALL SELECT embedding_model, embedding FROM search_docs WHERE embedding IS NOT NULL) v
        GROUP BY model ORDER BY model;
    CREATE INDEX asset_vectors_model ON asset_vectors (model, kind);

    CREATE TABLE search_vectors (
        asset_id bigint NOT NULL REFERENCES search_docs(asset_id) ON DELETE CASCADE,
        space_id integer NOT NULL REFERENCES embedding_spaces(id) ON DELETE CASCADE,
        embedding vector NOT NULL,
        PRIMARY KEY (space_id, asset_id)
    );
    CREATE INDEX search_vectors_asset ON search_vectors (asset_id);
    INSERT INTO search_vectors (asset_id, space_id, embedding)
        SELECT d.asset_id, s.id, d.embedding FROM search_docs d JOIN embedding_spaces s ON s.name = d.embedding_model
        WHERE d.embedding IS NOT NULL;
    DROP INDEX search_docs_embedding;
    ALTER TABLE search_docs DROP COLUMN embedding, DROP COLUMN embedding_model,
        ADD COLUMN version bigint NOT NULL DEFAULT 0;

    -- A job may run only some models (`maam dam reannotate --missing`); NULL runs the configured set.
    ALTER TABLE annotation_jobs ADD COLUMN models text[];

    CREATE SEQUENCE search_sync_seq;
    CREATE TABLE search_sync (asset_id bigint PRIMARY KEY, seq bigint NOT NULL);
    CREATE INDEX search_sync_seq_idx ON search_sync (seq);

    ALTER TABLE assets DROP CONSTRAINT assets_annotation_state_check;
    ALTER TABLE assets ADD COLUMN annotation_failed_models integer NOT NULL DEFAULT 0;
    UPDATE assets a SET annotation_failed_models = f.n
        FROM (SELECT asset_id, count(*) AS n FROM annotations WHERE state = 'failed' GROUP BY asset_id) f
        WHERE f.asset_id = a.id;
    UPDATE assets a SET annotation_state = CASE
            WHEN EXISTS (SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id AND j.state = 'running') THEN 'running'
            WHEN EXISTS (SELECT 1 FROM annotation_jobs j WHERE j.asset_id = a.id AND j.state = 'queued') THEN 'pending'
            ELSE 'done' END
        WHERE annotation_state = 'partial';
    ALTER TABLE assets ADD CONSTRAINT assets_annotation_state_check
        CHECK (annotation_state IN ('pending', 'running', 'done', 'failed', 'skipped'));
    DELETE FROM dam_meta WHERE key = 'embedding_dim';
    """)
    # One HNSW index per space that already has vectors (new spaces get theirs when they first appear).
    # (The same statement as services/dam/spaces.py, frozen here as this revision wrote it.)
    bind = op.get_bind()
    for space_id, dim in bind.exec_driver_sql("SELECT id, dim FROM embedding_spaces ORDER BY id").all():
        if int(dim) <= 2000:  # pgvector's HNSW limit for `vector`; larger spaces are searched exactly
            bind.exec_driver_sql(
                f"CREATE INDEX search_vectors_hnsw_{int(space_id)} ON search_vectors USING hnsw "
                f"((embedding::vector({int(dim)})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
                f"WHERE space_id = {int(space_id)}")


def downgrade() -> None:
    """Back to one fixed dimension: possible only while every stored vector has the same size."""
    bind = op.get_bind()
    dims = [r[0] for r in bind.exec_driver_sql("SELECT DISTINCT dim FROM embedding_spaces").all()]
    if len(dims) > 1:
        raise RuntimeError(f"vectors of {len(dims)} dimensions {sorted(dims)} are stored; revision 0001 holds one")
    dim = int(dims[0]) if dims else 512
    op.execute(f"""
    ALTER TABLE assets DROP CONSTRAINT assets_annotation_state_check;
    UPDATE assets SET annotation_state = 'partial'
        WHERE annotation_state = 'running' OR (annotation_state = 'done' AND annotation_failed_models > 0);
    ALTER TABLE assets DROP COLUMN annotation_failed_models;
    ALTER TABLE assets ADD CONSTRAINT assets_annotation_state_check
        CHECK (annotation_state IN ('pending', 'partial', 'done', 'failed', 'skipped'));
    ALTER TABLE annotation_jobs DROP COLUMN models;
    DROP TABLE search_sync;
    DROP SEQUENCE search_sync_seq;
    ALTER TABLE search_docs DROP COLUMN version, ADD COLUMN embedding vector({dim}), ADD COLUMN embedding_model text;
    ALTER TABLE search_docs ALTER COLUMN embedding SET STORAGE EXTERNAL;
    UPDATE search_docs d SET embedding = v.embedding, embedding_model = v.name FROM (
        SELECT DISTINCT ON (sv.asset_id) sv.asset_id, sv.embedding, s.name FROM search_vectors sv
        JOIN embedding_spaces s ON s.id = sv.space_id ORDER BY sv.asset_id, s.id) v
        WHERE v.asset_id = d.asset_id;
    CREATE INDEX search_docs_embedding ON search_docs USING hnsw (embedding vector_cosine_ops)
        WITH (m = 16, ef_construction = 64);
    DROP TABLE search_vectors;
    DROP INDEX asset_vectors_model;
    ALTER TABLE asset_vectors ALTER COLUMN embedding TYPE vector({dim});
    ALTER TABLE detector_prototypes ALTER COLUMN embedding TYPE vector({dim});
    DROP TABLE embedding_spaces;
    INSERT INTO dam_meta VALUES ('embedding_dim', '{dim}');
    """)
