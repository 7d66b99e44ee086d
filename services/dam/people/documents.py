"""What persons add to assets' search documents: a label per person (the `person=` filter and the
"people" facet ride on the backends' label field, under a prefix no detector label can carry) and the
persons' names as searchable text."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Detector labels are user text: one starting with this prefix is dropped from documents (detector_labels).
PERSON_LABEL = "\x1fperson:"

_PERSONS = text("""
SELECT DISTINCT f.asset_id, p.id, p.name FROM faces f JOIN persons p ON p.id = f.person_id
WHERE f.asset_id = ANY(:ids) AND NOT p.hidden ORDER BY f.asset_id, p.id
""")


def detector_labels(labels: list[str]) -> list[str]:
    return [label for label in labels if not label.startswith(PERSON_LABEL)]


def person_label(person_id: int) -> str:
    return f"{PERSON_LABEL}{person_id}"


def person_of_label(label: str) -> int | None:
    return int(label[len(PERSON_LABEL):]) if label.startswith(PERSON_LABEL) else None


async def persons_of(session: AsyncSession, asset_ids: Sequence[int]) -> dict[int, tuple[list[str], list[str]]]:
    """asset id -> (person labels, person names)."""
    found: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for asset_id, person_id, name in (await session.execute(_PERSONS, {"ids": list(asset_ids)})).all():
        labels, names = found[asset_id]
        labels.append(person_label(int(person_id)))
        if name:
            names.append(name)
    return found


def people_facet(facets: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The backends' `people` facet keyed by person id."""
    if "people" in facets:
        facets["people"] = {k[len(PERSON_LABEL):] if k.startswith(PERSON_LABEL) else k: v
                            for k, v in facets["people"].items()}
    return facets
