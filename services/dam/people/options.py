"""The people settings (MAAM_DAM__PEOPLE_*), read from the DAM's settings."""

from __future__ import annotations

from dataclasses import dataclass

from services.dam.core.config import DamOptions, get_dam_settings


@dataclass(frozen=True)
class PeopleOptions:
    join_similarity: float  # a new face joins the nearest person at this cosine or more
    cluster_similarity: float  # density clustering: faces this alike are neighbours
    min_faces: int  # a person needs this many faces (DBSCAN's min_samples)
    min_quality: float  # detector score x size factor below which a face is never clustered
    min_face_px: float  # shorter box side in pixels below which a face is never clustered

    @classmethod
    def of(cls, dam: DamOptions | None = None) -> PeopleOptions:
        dam = dam or get_dam_settings().dam
        return cls(dam.people_join_similarity, dam.people_cluster_similarity, dam.people_min_faces,
                   dam.people_min_quality, dam.people_min_face_px)

    def eligible(self, quality: float, size_px: float) -> bool:
        return quality >= self.min_quality and (size_px <= 0 or size_px >= self.min_face_px)
