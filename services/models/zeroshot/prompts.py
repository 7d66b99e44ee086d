"""The default heads: their classes, prompt ensembles, positive classes and thresholds. They are
written into each head's maam.json (params.prompts, params.threshold); edit them there and run
`maam models pull clip_zeroshot` again to rebuild the head from your prompts.

These are the CLIP paper's zero-shot recipe (a class is the mean of its prompts' embeddings), not
the source document's DCD or MemeTector models, which were never published."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HeadDefaults:
    name: str
    task: str
    what: str
    prompts: dict[str, list[str]]
    positive: tuple[str, ...] = ()
    threshold: float = 0.5
    top_k: int = 5
    params: dict[str, object] = field(default_factory=dict)


DISTURBING = HeadDefaults(
    "clip_zeroshot_disturbing", "disturbing_classification", "disturbing content (violence, gore, war, accidents)",
    {
        "disturbing": [
            "a photo of a violent scene", "a photo of blood and gore", "a photo of a dead body",
            "a photo of a severely injured person", "a photo of a car crash with victims",
            "a photo of war and destruction", "a photo of people fighting violently",
            "a photo of a person being attacked with a weapon", "a photo of an explosion with casualties",
            "a graphic and disturbing image",
        ],
        "not_disturbing": [
            "a photo", "an ordinary photo of everyday life", "a photo of a landscape", "a photo of people smiling",
            "a photo of food", "a photo of an animal", "a photo of a city street", "a portrait photo",
            "a photo of a building", "a photo of objects on a table",
        ],
    },
    positive=("disturbing",),
)

MEME = HeadDefaults(
    "clip_zeroshot_meme", "meme_classification", "memes (image macros with captions)",
    {
        "meme": [
            "a meme", "an internet meme", "a meme with white impact font text at the top and bottom",
            "a funny image macro with a caption", "a screenshot of a meme", "a reaction meme with text",
            "a demotivational poster meme",
        ],
        "not_meme": [
            "a photo", "a photograph of a scene", "a picture of people", "a painting", "a photo of a landscape",
            "a photo of an object", "a scanned document", "a diagram",
        ],
    },
    positive=("meme",),
)

# One template per tag: the CLIP paper's "a photo of a {}." carries most of the zero-shot accuracy, and
# 155 prompts keep the build under a minute on a CPU (each prompt is a full text-encoder pass); add
# templates to a tag's list in the head's maam.json for an ensemble.
TAG_TEMPLATES = ("a photo of a {}.",)
TAG_FILE = Path(__file__).with_name("tags.txt")


def tag_names() -> list[str]:
    return [line.strip() for line in TAG_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def tags_head() -> HeadDefaults:
    return HeadDefaults(
        "clip_zeroshot_tags", "image_tagging", "scene and object tags (a curated list of "
        f"{len(tag_names())})",
        {tag: [t.format(tag) for t in TAG_TEMPLATES] for tag in tag_names()},
        threshold=0.1, top_k=8,
    )


def default_heads() -> list[HeadDefaults]:
    return [DISTURBING, MEME, tags_head()]
