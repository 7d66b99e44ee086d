"""People: every detected face of an asset, and the persons faces are clustered into.

- `persons`: one owner's person in one embedding space (the face descriptor's model: never mixed), with
  an optional name, hidden flag and the unit centroid of its faces (new faces join the nearest one).
- `faces`: one detected face (box, keyframe time and track for videos, detector score, quality, size,
  attributes) with its face-descriptor embedding in its space; `person_id` is null while it waits for a
  clustering pass; `pinned`: a user placed it (re-clustering keeps it there).
- `face_rejections`: "this face is not this person", kept across re-annotation and re-clustering.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE persons (
        id bigserial PRIMARY KEY,
        owner_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        space_id integer NOT NULL REFERENCES embedding_spaces(id) ON DELETE CASCADE,
        name text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
        hidden boolean NOT NULL DEFAULT false,
        centroid vector,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX persons_owner_space ON persons (owner_id, space_id);
    CREATE INDEX persons_name ON persons (lower(name)) WHERE name IS NOT NULL;

    CREATE TABLE faces (
        id bigserial PRIMARY KEY,
        asset_id bigint NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        -- The annotation model whose result it came from: a re-run replaces its faces (keeping the user's
        -- corrections of faces found again).
        source text NOT NULL,
        box real[] NOT NULL CHECK (array_length(box, 1) = 4),
        frame_index integer,
        timestamp double precision,
        track integer,
        score real NOT NULL,
        quality real NOT NULL,
        size_px real NOT NULL,
        attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
        space_id integer REFERENCES embedding_spaces(id) ON DELETE SET NULL,
        embedding vector,
        person_id bigint REFERENCES persons(id) ON DELETE SET NULL,
        pinned boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX faces_asset ON faces (asset_id);
    CREATE INDEX faces_person ON faces (person_id) WHERE person_id IS NOT NULL;
    CREATE INDEX faces_waiting ON faces (space_id) WHERE person_id IS NULL AND embedding IS NOT NULL;

    CREATE TABLE face_rejections (
        face_id bigint NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person_id bigint NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (face_id, person_id)
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE face_rejections; DROP TABLE faces; DROP TABLE persons;")
