"""User-made zero-shot labels: the lighter sibling of the anchor-image detectors. A name and a few
prompts; the prompts are encoded by the CLIP text encoder paired with the library's cross-modal space
(TextCrossModalEmbedding), their normalised mean is the label's one prototype. It is a detector like
the others: /detectors/{id}/matches ranks assets, /apply labels them, and /search?label= finds them."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from services.dam.api import query_vectors
from services.dam.api.deps import Ctx, CurrentUser, Session
from services.dam.api.routes.detectors import _out
from services.dam.api.validation import SafeStr, StoredSimilarity
from services.dam.models import Detector, DetectorPrototype
from services.dam.schemas import DetectorOut, Visibility

router = APIRouter(prefix="/detectors", tags=["detectors"])
MAX_PROMPTS = 32

Prompt = Annotated[SafeStr, Field(min_length=1, max_length=300)]


class ZeroShotLabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeStr = Field(min_length=1, max_length=100)
    prompts: list[Prompt] = Field(min_length=1, max_length=MAX_PROMPTS,
                                  description="How the label looks, in words: 'a photo of a red car', ...")
    threshold: StoredSimilarity | None = None
    space: SafeStr | None = Field(default=None, description="A cross-modal embedding space; default: the library's.")
    visibility: Visibility = "private"


def mean_prompt(vectors: list[list[float]]) -> list[float]:
    """The prompts' L2-normalised vectors averaged and normalised again (CLIP's prompt ensembling)."""
    rows = np.asarray(vectors, np.float64)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    mean = rows.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        raise HTTPException(422, "the prompts cancel out (their mean vector is zero); give prompts that agree")
    return (mean / norm).astype(np.float32).tolist()


@router.post("/zeroshot", response_model=DetectorOut, status_code=status.HTTP_201_CREATED)
async def create_zeroshot_label(body: ZeroShotLabelIn, user: CurrentUser, session: Session, ctx: Ctx) -> DetectorOut:
    prompts = [p.strip() for p in body.prompts]
    if not all(prompts):
        raise HTTPException(422, "a prompt is blank")
    # 409 when the library has no cross-modal (CLIP) space, naming the pull that installs one.
    vectors = [await query_vectors.of_text(ctx, session, prompt, body.space) for prompt in prompts]
    space = vectors[0].space
    threshold = ctx.settings.dam.zeroshot_label_threshold if body.threshold is None else body.threshold
    detector = Detector(owner_id=user.id, name=body.name, label=body.name.strip().lower(),
                        visibility=body.visibility, threshold=threshold, model=space)
    session.add(detector)
    await session.flush()
    session.add(DetectorPrototype(detector_id=detector.id, model=space,
                                  embedding=mean_prompt([v.values for v in vectors])))
    await session.commit()
    return await _out(session, detector)
