"""Which command installs a model for a repository task, so a "no model installed" answer
(FAILED_PRECONDITION) names it. Every `maam models pull NAME` here is a row of the pull table
(tests/annotation/test_install_hints.py checks)."""

from __future__ import annotations

from collections.abc import Sequence

SHIPPED = "`maam models install-shipped`"

# repository task -> the command that installs a model serving it (the first that applies).
INSTALLS: dict[str, str] = {
    "object_detection": f"{SHIPPED} (NanoDet) or `maam models pull ssdlite320_coco`",
    "nsfw_classification": SHIPPED,
    "nsfw_detection": SHIPPED,
    "disturbing_classification": "`maam models pull clip_vit_b32` then `maam models pull clip_zeroshot`",
    "meme_classification": "`maam models pull clip_vit_b32` then `maam models pull clip_zeroshot`",
    "hateful_meme_classification": "`maam models train memefier --install` (the source document's MemeFier)",
    "image_tagging": "`maam models pull clip_vit_b32` then `maam models pull clip_zeroshot`",
    "action_recognition": "`maam models pull kinetics_r2plus1d_18`",
    "video_action_recognition": "`maam models pull kinetics_r2plus1d_18`",
    "image_captioning": "`maam models pull vit_gpt2_caption`",
    "image_embedding": "`maam models pull clip_vit_b32`",
    "text_embedding": f"{SHIPPED} (MiniLM) or `maam models pull clip_vit_b32`",
    "face_detection": f"{SHIPPED} or `maam models pull insightface_buffalo_l`",
    "region_embedding": "`maam models pull vit_b16_in21k`",
    "ocr_detection": SHIPPED,
}
GENERIC = f"{SHIPPED} installs the shipped models, `maam models pull NAME` the others"


def install_hint(tasks: Sequence[str]) -> str:
    """The command(s) that install a model of one of `tasks`."""
    found = [INSTALLS[t] for t in tasks if t in INSTALLS]
    return f"install one with {found[0]}" if found else GENERIC
