"""Initial schema: users, tokens, assets, outbox, annotations, vectors, search docs, projects, detectors.

Revision ID: 0001
Revises:
"""

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Revision 0002 lifts the fixed dimension (embedding spaces of any size); a test may still ask for one.
    dim = int(context.config.attributes.get("embedding_dim", 512))
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE TABLE dam_meta (key text PRIMARY KEY, value text NOT NULL)")
    op.execute(f"INSERT INTO dam_meta VALUES ('embedding_dim', '{dim}')")
    op.execute(_SCHEMA.replace("{dim}", str(dim)))


_SCHEMA = """
    CREATE TABLE users (
        id bigserial PRIMARY KEY,
        email text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        role text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
        is_active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE tokens (
        id bigserial PRIMARY KEY,
        user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('session', 'api_key')),
        name text NOT NULL DEFAULT '',
        token_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz
    );
    CREATE TABLE assets (
        id bigserial PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
        title text NOT NULL DEFAULT '',
        description text NOT NULL DEFAULT '',
        tags text[] NOT NULL DEFAULT '{}',
        filename text NOT NULL DEFAULT '',
        mime text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('image', 'video', 'model3d')),
        size bigint NOT NULL,
        sha256 text NOT NULL,
        width integer,
        height integer,
        duration double precision,
        annotation_state text NOT NULL DEFAULT 'pending'
            CHECK (annotation_state IN ('pending', 'partial', 'done', 'failed', 'skipped')),
        annotation_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    CREATE INDEX assets_owner ON assets (owner_id, id) WHERE deleted_at IS NULL;
    CREATE UNIQUE INDEX assets_owner_sha ON assets (owner_id, sha256) WHERE deleted_at IS NULL;
    CREATE INDEX assets_sha ON assets (sha256);
    CREATE INDEX assets_deleted ON assets (deleted_at) WHERE deleted_at IS NOT NULL;

    -- The outbox: written in the upload transaction, claimed by workers with FOR UPDATE SKIP LOCKED.
    CREATE TABLE annotation_jobs (
        id bigserial PRIMARY KEY,
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    );
    CREATE INDEX annotation_jobs_ready ON annotation_jobs (available_at) WHERE state IN ('queued', 'running');

    -- One row per (asset, model): re-running a model replaces its result, never duplicates it.
    CREATE TABLE annotations (
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        model text NOT NULL,
        task text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
        data jsonb,
        error text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (asset_id, model)
    );

    -- Whole-image and region vectors (source of truth for kNN indexes and user-made detectors).
    CREATE TABLE asset_vectors (
        id bigserial PRIMARY KEY,
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        -- The annotation model whose result holds the vector (a re-run replaces its vectors) ...
        source text NOT NULL,
        -- ... and the embedding model (the space): only vectors of one space are compared.
        model text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('image', 'region')),
        box real[],
        label text,
        embedding vector({dim}) NOT NULL
    );
    CREATE INDEX asset_vectors_asset ON asset_vectors (asset_id);

    -- The `postgres` search backend's index, rebuilt from the tables above by `maam dam reindex`.
    CREATE TABLE search_docs (
        asset_id bigint PRIMARY KEY REFERENCES assets(id) ON DELETE CASCADE,
        owner_id bigint NOT NULL,
        visibility text NOT NULL,
        kind text NOT NULL,
        mime text NOT NULL,
        title text NOT NULL DEFAULT '',
        description text NOT NULL DEFAULT '',
        tags text[] NOT NULL DEFAULT '{}',
        captions text NOT NULL DEFAULT '',
        ocr_text text NOT NULL DEFAULT '',
        objects text[] NOT NULL DEFAULT '{}',
        faces integer NOT NULL DEFAULT 0,
        nsfw boolean,
        disturbing boolean,
        meme boolean,
        annotation_types text[] NOT NULL DEFAULT '{}',
        labels text[] NOT NULL DEFAULT '{}',
        project_ids bigint[] NOT NULL DEFAULT '{}',
        uploaded_at timestamptz NOT NULL,
        tsv tsvector NOT NULL DEFAULT ''::tsvector,
        embedding vector({dim}),
        -- The embedding model of `embedding`: kNN compares vectors of one model only.
        embedding_model text
    );
    -- Vectors (2 KiB at 512-d) go out of line uncompressed, so the heap stays narrow for counts, facets and
    -- filters, while the small arrays stay inline (a lower toast_tuple_target would toast them too: slower).
    ALTER TABLE search_docs ALTER COLUMN embedding SET STORAGE EXTERNAL;
    CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv);
    CREATE INDEX search_docs_objects ON search_docs USING gin (objects);
    CREATE INDEX search_docs_labels ON search_docs USING gin (labels);
    CREATE INDEX search_docs_projects ON search_docs USING gin (project_ids);
    CREATE INDEX search_docs_owner ON search_docs (owner_id);
    CREATE INDEX search_docs_uploaded ON search_docs (uploaded_at);
    CREATE INDEX search_docs_embedding ON search_docs USING hnsw (embedding vector_cosine_ops)
        WITH (m = 16, ef_construction = 64);

    CREATE TABLE projects (
        id bigserial PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE project_assets (
        project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        added_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (project_id, asset_id)
    );

    CREATE TABLE detectors (
        id bigserial PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name text NOT NULL,
        label text NOT NULL,
        visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'public')),
        threshold real NOT NULL,
        model text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE detector_prototypes (
        id bigserial PRIMARY KEY,
        detector_id bigint NOT NULL REFERENCES detectors(id) ON DELETE CASCADE,
        -- One prototype per anchor and embedding model (whole-image and region models may differ).
        model text NOT NULL,
        embedding vector({dim}) NOT NULL
    );
    -- Labels written by applying a detector; a search filter through search_docs.labels.
    CREATE TABLE asset_labels (
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        detector_id bigint NOT NULL REFERENCES detectors(id) ON DELETE CASCADE,
        label text NOT NULL,
        score real NOT NULL,
        PRIMARY KEY (asset_id, detector_id)
    );
    """


def downgrade() -> None:
    op.execute("""
    DROP TABLE asset_labels, detector_prototypes, detectors, project_assets, projects, search_docs,
        asset_vectors, annotations, annotation_jobs, assets, tokens, users, dam_meta
    """)
