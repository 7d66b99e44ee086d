from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnnotationRequest(_message.Message):
    __slots__ = ("asset_url", "asset_data", "boxes", "model", "video_options")
    ASSET_URL_FIELD_NUMBER: _ClassVar[int]
    ASSET_DATA_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VIDEO_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    asset_url: str
    asset_data: bytes
    boxes: _containers.RepeatedCompositeFieldContainer[BoundingBox]
    model: str
    video_options: VideoOptions
    def __init__(self, asset_url: _Optional[str] = ..., asset_data: _Optional[bytes] = ..., boxes: _Optional[_Iterable[_Union[BoundingBox, _Mapping]]] = ..., model: _Optional[str] = ..., video_options: _Optional[_Union[VideoOptions, _Mapping]] = ...) -> None: ...

class ImageAnnotationRequest(_message.Message):
    __slots__ = ("image_url", "image_data", "models")
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DATA_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    image_url: str
    image_data: bytes
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image_url: _Optional[str] = ..., image_data: _Optional[bytes] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class ImageAnnotationRequestBatch(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ImageAnnotationRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ImageAnnotationRequest, _Mapping]]] = ...) -> None: ...

class VideoAnnotationRequest(_message.Message):
    __slots__ = ("video_url", "video_data", "models", "video_options")
    VIDEO_URL_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DATA_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    video_url: str
    video_data: bytes
    models: _containers.RepeatedScalarFieldContainer[str]
    video_options: VideoOptions
    def __init__(self, video_url: _Optional[str] = ..., video_data: _Optional[bytes] = ..., models: _Optional[_Iterable[str]] = ..., video_options: _Optional[_Union[VideoOptions, _Mapping]] = ...) -> None: ...

class VideoOptions(_message.Message):
    __slots__ = ("max_keyframes_per_minute", "face_check_every", "equirectangular", "clip_seconds")
    MAX_KEYFRAMES_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    FACE_CHECK_EVERY_FIELD_NUMBER: _ClassVar[int]
    EQUIRECTANGULAR_FIELD_NUMBER: _ClassVar[int]
    CLIP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_keyframes_per_minute: float
    face_check_every: int
    equirectangular: bool
    clip_seconds: float
    def __init__(self, max_keyframes_per_minute: _Optional[float] = ..., face_check_every: _Optional[int] = ..., equirectangular: _Optional[bool] = ..., clip_seconds: _Optional[float] = ...) -> None: ...

class ThreeDAnnotationRequest(_message.Message):
    __slots__ = ("asset_url", "asset_type", "asset_data", "views")
    ASSET_URL_FIELD_NUMBER: _ClassVar[int]
    ASSET_TYPE_FIELD_NUMBER: _ClassVar[int]
    ASSET_DATA_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    asset_url: str
    asset_type: str
    asset_data: bytes
    views: int
    def __init__(self, asset_url: _Optional[str] = ..., asset_type: _Optional[str] = ..., asset_data: _Optional[bytes] = ..., views: _Optional[int] = ...) -> None: ...

class TextEmbeddingRequest(_message.Message):
    __slots__ = ("text", "model")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x_min", "y_min", "x_max", "y_max")
    X_MIN_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_FIELD_NUMBER: _ClassVar[int]
    X_MAX_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_FIELD_NUMBER: _ClassVar[int]
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    def __init__(self, x_min: _Optional[float] = ..., y_min: _Optional[float] = ..., x_max: _Optional[float] = ..., y_max: _Optional[float] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class ImageSize(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ("label", "score", "class_id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    class_id: int
    def __init__(self, label: _Optional[str] = ..., score: _Optional[float] = ..., class_id: _Optional[int] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("label", "score", "box", "class_id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    score: float
    box: BoundingBox
    class_id: int
    def __init__(self, label: _Optional[str] = ..., score: _Optional[float] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ..., class_id: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values", "dimension", "model", "normalized")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    dimension: int
    model: str
    normalized: bool
    def __init__(self, values: _Optional[_Iterable[float]] = ..., dimension: _Optional[int] = ..., model: _Optional[str] = ..., normalized: _Optional[bool] = ...) -> None: ...

class VideoInfo(_message.Message):
    __slots__ = ("width", "height", "fps", "frame_count", "duration", "codec", "keyframe_timestamps")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    codec: str
    keyframe_timestamps: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., frame_count: _Optional[int] = ..., duration: _Optional[float] = ..., codec: _Optional[str] = ..., keyframe_timestamps: _Optional[_Iterable[float]] = ...) -> None: ...

class FrameScore(_message.Message):
    __slots__ = ("frame_index", "timestamp", "score")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: float
    score: float
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class ModelError(_message.Message):
    __slots__ = ("model", "task", "status", "error_msg")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    model: str
    task: str
    status: int
    error_msg: str
    def __init__(self, model: _Optional[str] = ..., task: _Optional[str] = ..., status: _Optional[int] = ..., error_msg: _Optional[str] = ...) -> None: ...

class ImageTaggingResponse(_message.Message):
    __slots__ = ("model", "tags", "threshold")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    model: str
    tags: _containers.RepeatedCompositeFieldContainer[Label]
    threshold: float
    def __init__(self, model: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., threshold: _Optional[float] = ...) -> None: ...

class ImageActionRecognitionResponse(_message.Message):
    __slots__ = ("model", "actions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    actions: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, model: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class ImageCaptioningResponse(_message.Message):
    __slots__ = ("model", "caption", "score", "alternatives")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    model: str
    caption: str
    score: float
    alternatives: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[str] = ..., caption: _Optional[str] = ..., score: _Optional[float] = ..., alternatives: _Optional[_Iterable[str]] = ...) -> None: ...

class ImageCrossModalEmbeddingResponse(_message.Message):
    __slots__ = ("model", "embedding")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    model: str
    embedding: Embedding
    def __init__(self, model: _Optional[str] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ...) -> None: ...

class ImageDisturbingContentDetectionResponse(_message.Message):
    __slots__ = ("model", "score", "is_disturbing", "threshold", "labels")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    IS_DISTURBING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    model: str
    score: float
    is_disturbing: bool
    threshold: float
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, model: _Optional[str] = ..., score: _Optional[float] = ..., is_disturbing: _Optional[bool] = ..., threshold: _Optional[float] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("box", "score", "embedding", "identity", "identity_score", "landmarks", "attributes")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    box: BoundingBox
    score: float
    embedding: Embedding
    identity: str
    identity_score: float
    landmarks: _containers.RepeatedCompositeFieldContainer[Point]
    attributes: FaceAttributes
    def __init__(self, box: _Optional[_Union[BoundingBox, _Mapping]] = ..., score: _Optional[float] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ..., identity: _Optional[str] = ..., identity_score: _Optional[float] = ..., landmarks: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., attributes: _Optional[_Union[FaceAttributes, _Mapping]] = ...) -> None: ...

class FaceAttributes(_message.Message):
    __slots__ = ("age", "gender", "gender_score", "expression", "expression_score", "model")
    AGE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    GENDER_SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_SCORE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    age: float
    gender: str
    gender_score: float
    expression: str
    expression_score: float
    model: str
    def __init__(self, age: _Optional[float] = ..., gender: _Optional[str] = ..., gender_score: _Optional[float] = ..., expression: _Optional[str] = ..., expression_score: _Optional[float] = ..., model: _Optional[str] = ...) -> None: ...

class ImageFaceRecognitionResponse(_message.Message):
    __slots__ = ("model", "faces", "image_size", "embedding_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    image_size: ImageSize
    embedding_model: str
    def __init__(self, model: _Optional[str] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class ImageMemeDetectionResponse(_message.Message):
    __slots__ = ("model", "score", "is_meme", "threshold", "hateful_score", "hateful_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    IS_MEME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HATEFUL_SCORE_FIELD_NUMBER: _ClassVar[int]
    HATEFUL_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    score: float
    is_meme: bool
    threshold: float
    hateful_score: float
    hateful_model: str
    def __init__(self, model: _Optional[str] = ..., score: _Optional[float] = ..., is_meme: _Optional[bool] = ..., threshold: _Optional[float] = ..., hateful_score: _Optional[float] = ..., hateful_model: _Optional[str] = ...) -> None: ...

class ImageNSFWDetectionResponse(_message.Message):
    __slots__ = ("model", "score", "is_nsfw", "threshold", "regions", "labels", "image_size")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    IS_NSFW_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    model: str
    score: float
    is_nsfw: bool
    threshold: float
    regions: _containers.RepeatedCompositeFieldContainer[Detection]
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    image_size: ImageSize
    def __init__(self, model: _Optional[str] = ..., score: _Optional[float] = ..., is_nsfw: _Optional[bool] = ..., threshold: _Optional[float] = ..., regions: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ...) -> None: ...

class ImageObjectDetectionResponse(_message.Message):
    __slots__ = ("model", "detections", "image_size")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    model: str
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    image_size: ImageSize
    def __init__(self, model: _Optional[str] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ...) -> None: ...

class RegionFeature(_message.Message):
    __slots__ = ("box", "label", "score", "embedding", "from_request")
    BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    FROM_REQUEST_FIELD_NUMBER: _ClassVar[int]
    box: BoundingBox
    label: str
    score: float
    embedding: Embedding
    from_request: bool
    def __init__(self, box: _Optional[_Union[BoundingBox, _Mapping]] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ..., from_request: _Optional[bool] = ...) -> None: ...

class ImageRegionFeatureExtractionResponse(_message.Message):
    __slots__ = ("model", "regions", "whole_image", "image_size", "proposal_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    WHOLE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    regions: _containers.RepeatedCompositeFieldContainer[RegionFeature]
    whole_image: Embedding
    image_size: ImageSize
    proposal_model: str
    def __init__(self, model: _Optional[str] = ..., regions: _Optional[_Iterable[_Union[RegionFeature, _Mapping]]] = ..., whole_image: _Optional[_Union[Embedding, _Mapping]] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ..., proposal_model: _Optional[str] = ...) -> None: ...

class SaliencyMap(_message.Message):
    __slots__ = ("width", "height", "png")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    png: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., png: _Optional[bytes] = ...) -> None: ...

class ImageSaliencyDetectionResponse(_message.Message):
    __slots__ = ("model", "map", "salient_regions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    SALIENT_REGIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    map: SaliencyMap
    salient_regions: _containers.RepeatedCompositeFieldContainer[BoundingBox]
    def __init__(self, model: _Optional[str] = ..., map: _Optional[_Union[SaliencyMap, _Mapping]] = ..., salient_regions: _Optional[_Iterable[_Union[BoundingBox, _Mapping]]] = ...) -> None: ...

class TextLine(_message.Message):
    __slots__ = ("text", "score", "polygon", "box")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    text: str
    score: float
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    box: BoundingBox
    def __init__(self, text: _Optional[str] = ..., score: _Optional[float] = ..., polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

class ImageTextRecognitionResponse(_message.Message):
    __slots__ = ("model", "lines", "full_text", "image_size")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    FULL_TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    model: str
    lines: _containers.RepeatedCompositeFieldContainer[TextLine]
    full_text: str
    image_size: ImageSize
    def __init__(self, model: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[TextLine, _Mapping]]] = ..., full_text: _Optional[str] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ...) -> None: ...

class TextCrossModalEmbeddingResponse(_message.Message):
    __slots__ = ("model", "embedding")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    model: str
    embedding: Embedding
    def __init__(self, model: _Optional[str] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ...) -> None: ...

class ClipActions(_message.Message):
    __slots__ = ("start_time", "end_time", "actions")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    start_time: float
    end_time: float
    actions: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., actions: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class VideoActionRecognitionResponse(_message.Message):
    __slots__ = ("model", "clips", "actions", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    clips: _containers.RepeatedCompositeFieldContainer[ClipActions]
    actions: _containers.RepeatedCompositeFieldContainer[Label]
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., clips: _Optional[_Iterable[_Union[ClipActions, _Mapping]]] = ..., actions: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class VideoDisturbingContentDetectionResponse(_message.Message):
    __slots__ = ("model", "is_disturbing", "max_score", "threshold", "frames", "triggering_timestamps", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IS_DISTURBING_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    TRIGGERING_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    is_disturbing: bool
    max_score: float
    threshold: float
    frames: _containers.RepeatedCompositeFieldContainer[FrameScore]
    triggering_timestamps: _containers.RepeatedScalarFieldContainer[float]
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., is_disturbing: _Optional[bool] = ..., max_score: _Optional[float] = ..., threshold: _Optional[float] = ..., frames: _Optional[_Iterable[_Union[FrameScore, _Mapping]]] = ..., triggering_timestamps: _Optional[_Iterable[float]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class FaceTrack(_message.Message):
    __slots__ = ("start_frame", "end_frame", "start_time", "end_time", "boxes")
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FRAME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    boxes: _containers.RepeatedCompositeFieldContainer[FrameBox]
    def __init__(self, start_frame: _Optional[int] = ..., end_frame: _Optional[int] = ..., start_time: _Optional[float] = ..., end_time: _Optional[float] = ..., boxes: _Optional[_Iterable[_Union[FrameBox, _Mapping]]] = ...) -> None: ...

class FrameBox(_message.Message):
    __slots__ = ("frame_index", "box")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    box: BoundingBox
    def __init__(self, frame_index: _Optional[int] = ..., box: _Optional[_Union[BoundingBox, _Mapping]] = ...) -> None: ...

class VideoFaceBlurringResponse(_message.Message):
    __slots__ = ("model", "video_data", "mime_type", "tracks", "video", "frames_checked", "video_size", "encoding", "frames_copied")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    FRAMES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SIZE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    FRAMES_COPIED_FIELD_NUMBER: _ClassVar[int]
    model: str
    video_data: bytes
    mime_type: str
    tracks: _containers.RepeatedCompositeFieldContainer[FaceTrack]
    video: VideoInfo
    frames_checked: int
    video_size: int
    encoding: str
    frames_copied: int
    def __init__(self, model: _Optional[str] = ..., video_data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., tracks: _Optional[_Iterable[_Union[FaceTrack, _Mapping]]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ..., frames_checked: _Optional[int] = ..., video_size: _Optional[int] = ..., encoding: _Optional[str] = ..., frames_copied: _Optional[int] = ...) -> None: ...

class FrameFaces(_message.Message):
    __slots__ = ("frame_index", "timestamp", "faces")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: float
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[float] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ...) -> None: ...

class VideoFaceRecognitionResponse(_message.Message):
    __slots__ = ("model", "frames", "video", "embedding_model")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    frames: _containers.RepeatedCompositeFieldContainer[FrameFaces]
    video: VideoInfo
    embedding_model: str
    def __init__(self, model: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[FrameFaces, _Mapping]]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ..., embedding_model: _Optional[str] = ...) -> None: ...

class VideoNSFWDetectionResponse(_message.Message):
    __slots__ = ("model", "is_nsfw", "max_score", "threshold", "frames", "triggering_timestamps", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IS_NSFW_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    TRIGGERING_TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    is_nsfw: bool
    max_score: float
    threshold: float
    frames: _containers.RepeatedCompositeFieldContainer[FrameScore]
    triggering_timestamps: _containers.RepeatedScalarFieldContainer[float]
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., is_nsfw: _Optional[bool] = ..., max_score: _Optional[float] = ..., threshold: _Optional[float] = ..., frames: _Optional[_Iterable[_Union[FrameScore, _Mapping]]] = ..., triggering_timestamps: _Optional[_Iterable[float]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class FrameDetections(_message.Message):
    __slots__ = ("frame_index", "timestamp", "detections")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: float
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[float] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...

class VideoObjectDetectionResponse(_message.Message):
    __slots__ = ("model", "frames", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    frames: _containers.RepeatedCompositeFieldContainer[FrameDetections]
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[FrameDetections, _Mapping]]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class FrameText(_message.Message):
    __slots__ = ("frame_index", "timestamp", "lines", "full_text")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    FULL_TEXT_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: float
    lines: _containers.RepeatedCompositeFieldContainer[TextLine]
    full_text: str
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[float] = ..., lines: _Optional[_Iterable[_Union[TextLine, _Mapping]]] = ..., full_text: _Optional[str] = ...) -> None: ...

class VideoTextRecognitionResponse(_message.Message):
    __slots__ = ("model", "frames", "full_text", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FULL_TEXT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    frames: _containers.RepeatedCompositeFieldContainer[FrameText]
    full_text: str
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[FrameText, _Mapping]]] = ..., full_text: _Optional[str] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class FrameSaliency(_message.Message):
    __slots__ = ("frame_index", "timestamp", "map")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: float
    map: SaliencyMap
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[float] = ..., map: _Optional[_Union[SaliencyMap, _Mapping]] = ...) -> None: ...

class VideoSaliencyDetectionResponse(_message.Message):
    __slots__ = ("model", "frames", "video")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    model: str
    frames: _containers.RepeatedCompositeFieldContainer[FrameSaliency]
    video: VideoInfo
    def __init__(self, model: _Optional[str] = ..., frames: _Optional[_Iterable[_Union[FrameSaliency, _Mapping]]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ...) -> None: ...

class ImageAnnotationResponse(_message.Message):
    __slots__ = ("status", "error_msg", "valid_models", "image_size", "image_action_recognition_result", "image_captioning_result", "image_cross_modal_embedding_result", "image_disturbing_content_detection_result", "image_face_recognition_result", "image_meme_detection_result", "image_object_detection_result", "image_nsfw_detection_result", "image_saliency_detection_result", "image_text_recognition_result", "image_region_feature_extraction_result", "image_tagging_result", "model_errors")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    VALID_MODELS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ACTION_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CAPTIONING_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CROSS_MODAL_EMBEDDING_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DISTURBING_CONTENT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FACE_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MEME_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_OBJECT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_NSFW_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SALIENCY_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TEXT_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REGION_FEATURE_EXTRACTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TAGGING_RESULT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERRORS_FIELD_NUMBER: _ClassVar[int]
    status: int
    error_msg: str
    valid_models: _containers.RepeatedScalarFieldContainer[str]
    image_size: ImageSize
    image_action_recognition_result: ImageActionRecognitionResponse
    image_captioning_result: ImageCaptioningResponse
    image_cross_modal_embedding_result: ImageCrossModalEmbeddingResponse
    image_disturbing_content_detection_result: ImageDisturbingContentDetectionResponse
    image_face_recognition_result: ImageFaceRecognitionResponse
    image_meme_detection_result: ImageMemeDetectionResponse
    image_object_detection_result: ImageObjectDetectionResponse
    image_nsfw_detection_result: ImageNSFWDetectionResponse
    image_saliency_detection_result: ImageSaliencyDetectionResponse
    image_text_recognition_result: ImageTextRecognitionResponse
    image_region_feature_extraction_result: ImageRegionFeatureExtractionResponse
    image_tagging_result: ImageTaggingResponse
    model_errors: _containers.RepeatedCompositeFieldContainer[ModelError]
    def __init__(self, status: _Optional[int] = ..., error_msg: _Optional[str] = ..., valid_models: _Optional[_Iterable[str]] = ..., image_size: _Optional[_Union[ImageSize, _Mapping]] = ..., image_action_recognition_result: _Optional[_Union[ImageActionRecognitionResponse, _Mapping]] = ..., image_captioning_result: _Optional[_Union[ImageCaptioningResponse, _Mapping]] = ..., image_cross_modal_embedding_result: _Optional[_Union[ImageCrossModalEmbeddingResponse, _Mapping]] = ..., image_disturbing_content_detection_result: _Optional[_Union[ImageDisturbingContentDetectionResponse, _Mapping]] = ..., image_face_recognition_result: _Optional[_Union[ImageFaceRecognitionResponse, _Mapping]] = ..., image_meme_detection_result: _Optional[_Union[ImageMemeDetectionResponse, _Mapping]] = ..., image_object_detection_result: _Optional[_Union[ImageObjectDetectionResponse, _Mapping]] = ..., image_nsfw_detection_result: _Optional[_Union[ImageNSFWDetectionResponse, _Mapping]] = ..., image_saliency_detection_result: _Optional[_Union[ImageSaliencyDetectionResponse, _Mapping]] = ..., image_text_recognition_result: _Optional[_Union[ImageTextRecognitionResponse, _Mapping]] = ..., image_region_feature_extraction_result: _Optional[_Union[ImageRegionFeatureExtractionResponse, _Mapping]] = ..., image_tagging_result: _Optional[_Union[ImageTaggingResponse, _Mapping]] = ..., model_errors: _Optional[_Iterable[_Union[ModelError, _Mapping]]] = ...) -> None: ...

class ImageAnnotationStreamResponse(_message.Message):
    __slots__ = ("image_action_recognition_result", "image_captioning_result", "image_cross_modal_embedding_result", "image_disturbing_content_detection_result", "image_face_recognition_result", "image_meme_detection_result", "image_object_detection_result", "image_nsfw_detection_result", "image_saliency_detection_result", "image_text_recognition_result", "image_region_feature_extraction_result", "image_tagging_result", "model_error")
    IMAGE_ACTION_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CAPTIONING_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_CROSS_MODAL_EMBEDDING_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DISTURBING_CONTENT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FACE_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_MEME_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_OBJECT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_NSFW_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SALIENCY_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TEXT_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REGION_FEATURE_EXTRACTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TAGGING_RESULT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERROR_FIELD_NUMBER: _ClassVar[int]
    image_action_recognition_result: ImageActionRecognitionResponse
    image_captioning_result: ImageCaptioningResponse
    image_cross_modal_embedding_result: ImageCrossModalEmbeddingResponse
    image_disturbing_content_detection_result: ImageDisturbingContentDetectionResponse
    image_face_recognition_result: ImageFaceRecognitionResponse
    image_meme_detection_result: ImageMemeDetectionResponse
    image_object_detection_result: ImageObjectDetectionResponse
    image_nsfw_detection_result: ImageNSFWDetectionResponse
    image_saliency_detection_result: ImageSaliencyDetectionResponse
    image_text_recognition_result: ImageTextRecognitionResponse
    image_region_feature_extraction_result: ImageRegionFeatureExtractionResponse
    image_tagging_result: ImageTaggingResponse
    model_error: ModelError
    def __init__(self, image_action_recognition_result: _Optional[_Union[ImageActionRecognitionResponse, _Mapping]] = ..., image_captioning_result: _Optional[_Union[ImageCaptioningResponse, _Mapping]] = ..., image_cross_modal_embedding_result: _Optional[_Union[ImageCrossModalEmbeddingResponse, _Mapping]] = ..., image_disturbing_content_detection_result: _Optional[_Union[ImageDisturbingContentDetectionResponse, _Mapping]] = ..., image_face_recognition_result: _Optional[_Union[ImageFaceRecognitionResponse, _Mapping]] = ..., image_meme_detection_result: _Optional[_Union[ImageMemeDetectionResponse, _Mapping]] = ..., image_object_detection_result: _Optional[_Union[ImageObjectDetectionResponse, _Mapping]] = ..., image_nsfw_detection_result: _Optional[_Union[ImageNSFWDetectionResponse, _Mapping]] = ..., image_saliency_detection_result: _Optional[_Union[ImageSaliencyDetectionResponse, _Mapping]] = ..., image_text_recognition_result: _Optional[_Union[ImageTextRecognitionResponse, _Mapping]] = ..., image_region_feature_extraction_result: _Optional[_Union[ImageRegionFeatureExtractionResponse, _Mapping]] = ..., image_tagging_result: _Optional[_Union[ImageTaggingResponse, _Mapping]] = ..., model_error: _Optional[_Union[ModelError, _Mapping]] = ...) -> None: ...

class ImageAnnotationStreamResponseBatch(_message.Message):
    __slots__ = ("index", "response", "status", "error_msg")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    index: int
    response: ImageAnnotationStreamResponse
    status: int
    error_msg: str
    def __init__(self, index: _Optional[int] = ..., response: _Optional[_Union[ImageAnnotationStreamResponse, _Mapping]] = ..., status: _Optional[int] = ..., error_msg: _Optional[str] = ...) -> None: ...

class VideoAnnotationResponse(_message.Message):
    __slots__ = ("status", "error_msg", "valid_models", "video", "video_action_recognition_result", "video_disturbing_content_detection_result", "video_face_recognition_result", "video_nsfw_detection_result", "video_object_detection_result", "video_saliency_detection_result", "video_text_recognition_result", "model_errors")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    VALID_MODELS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ACTION_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DISTURBING_CONTENT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FACE_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_NSFW_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_OBJECT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SALIENCY_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_TEXT_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERRORS_FIELD_NUMBER: _ClassVar[int]
    status: int
    error_msg: str
    valid_models: _containers.RepeatedScalarFieldContainer[str]
    video: VideoInfo
    video_action_recognition_result: VideoActionRecognitionResponse
    video_disturbing_content_detection_result: VideoDisturbingContentDetectionResponse
    video_face_recognition_result: VideoFaceRecognitionResponse
    video_nsfw_detection_result: VideoNSFWDetectionResponse
    video_object_detection_result: VideoObjectDetectionResponse
    video_saliency_detection_result: VideoSaliencyDetectionResponse
    video_text_recognition_result: VideoTextRecognitionResponse
    model_errors: _containers.RepeatedCompositeFieldContainer[ModelError]
    def __init__(self, status: _Optional[int] = ..., error_msg: _Optional[str] = ..., valid_models: _Optional[_Iterable[str]] = ..., video: _Optional[_Union[VideoInfo, _Mapping]] = ..., video_action_recognition_result: _Optional[_Union[VideoActionRecognitionResponse, _Mapping]] = ..., video_disturbing_content_detection_result: _Optional[_Union[VideoDisturbingContentDetectionResponse, _Mapping]] = ..., video_face_recognition_result: _Optional[_Union[VideoFaceRecognitionResponse, _Mapping]] = ..., video_nsfw_detection_result: _Optional[_Union[VideoNSFWDetectionResponse, _Mapping]] = ..., video_object_detection_result: _Optional[_Union[VideoObjectDetectionResponse, _Mapping]] = ..., video_saliency_detection_result: _Optional[_Union[VideoSaliencyDetectionResponse, _Mapping]] = ..., video_text_recognition_result: _Optional[_Union[VideoTextRecognitionResponse, _Mapping]] = ..., model_errors: _Optional[_Iterable[_Union[ModelError, _Mapping]]] = ...) -> None: ...

class VideoAnnotationStreamResponse(_message.Message):
    __slots__ = ("video_action_recognition_result", "video_disturbing_content_detection_result", "video_face_recognition_result", "video_nsfw_detection_result", "video_object_detection_result", "video_saliency_detection_result", "video_text_recognition_result", "model_error")
    VIDEO_ACTION_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DISTURBING_CONTENT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FACE_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_NSFW_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_OBJECT_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SALIENCY_DETECTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_TEXT_RECOGNITION_RESULT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERROR_FIELD_NUMBER: _ClassVar[int]
    video_action_recognition_result: VideoActionRecognitionResponse
    video_disturbing_content_detection_result: VideoDisturbingContentDetectionResponse
    video_face_recognition_result: VideoFaceRecognitionResponse
    video_nsfw_detection_result: VideoNSFWDetectionResponse
    video_object_detection_result: VideoObjectDetectionResponse
    video_saliency_detection_result: VideoSaliencyDetectionResponse
    video_text_recognition_result: VideoTextRecognitionResponse
    model_error: ModelError
    def __init__(self, video_action_recognition_result: _Optional[_Union[VideoActionRecognitionResponse, _Mapping]] = ..., video_disturbing_content_detection_result: _Optional[_Union[VideoDisturbingContentDetectionResponse, _Mapping]] = ..., video_face_recognition_result: _Optional[_Union[VideoFaceRecognitionResponse, _Mapping]] = ..., video_nsfw_detection_result: _Optional[_Union[VideoNSFWDetectionResponse, _Mapping]] = ..., video_object_detection_result: _Optional[_Union[VideoObjectDetectionResponse, _Mapping]] = ..., video_saliency_detection_result: _Optional[_Union[VideoSaliencyDetectionResponse, _Mapping]] = ..., video_text_recognition_result: _Optional[_Union[VideoTextRecognitionResponse, _Mapping]] = ..., model_error: _Optional[_Union[ModelError, _Mapping]] = ...) -> None: ...

class MeshInfo(_message.Message):
    __slots__ = ("vertex_count", "face_count", "is_watertight", "surface_area", "volume", "bounds", "mesh_count")
    VERTEX_COUNT_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    IS_WATERTIGHT_FIELD_NUMBER: _ClassVar[int]
    SURFACE_AREA_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    MESH_COUNT_FIELD_NUMBER: _ClassVar[int]
    vertex_count: int
    face_count: int
    is_watertight: bool
    surface_area: float
    volume: float
    bounds: _containers.RepeatedScalarFieldContainer[float]
    mesh_count: int
    def __init__(self, vertex_count: _Optional[int] = ..., face_count: _Optional[int] = ..., is_watertight: _Optional[bool] = ..., surface_area: _Optional[float] = ..., volume: _Optional[float] = ..., bounds: _Optional[_Iterable[float]] = ..., mesh_count: _Optional[int] = ...) -> None: ...

class RenderedView(_message.Message):
    __slots__ = ("azimuth", "elevation", "png", "annotations")
    AZIMUTH_FIELD_NUMBER: _ClassVar[int]
    ELEVATION_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    azimuth: float
    elevation: float
    png: bytes
    annotations: ImageAnnotationResponse
    def __init__(self, azimuth: _Optional[float] = ..., elevation: _Optional[float] = ..., png: _Optional[bytes] = ..., annotations: _Optional[_Union[ImageAnnotationResponse, _Mapping]] = ...) -> None: ...

class Annotation3dResponse(_message.Message):
    __slots__ = ("status", "error_msg", "valid_models", "geometry", "views", "labels")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MSG_FIELD_NUMBER: _ClassVar[int]
    VALID_MODELS_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    status: int
    error_msg: str
    valid_models: _containers.RepeatedScalarFieldContainer[str]
    geometry: MeshInfo
    views: _containers.RepeatedCompositeFieldContainer[RenderedView]
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, status: _Optional[int] = ..., error_msg: _Optional[str] = ..., valid_models: _Optional[_Iterable[str]] = ..., geometry: _Optional[_Union[MeshInfo, _Mapping]] = ..., views: _Optional[_Iterable[_Union[RenderedView, _Mapping]]] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class CapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskCapability(_message.Message):
    __slots__ = ("task", "media", "rpc", "models", "available", "enable_command", "builtin")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ENABLE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    task: str
    media: str
    rpc: str
    models: _containers.RepeatedScalarFieldContainer[str]
    available: bool
    enable_command: str
    builtin: bool
    def __init__(self, task: _Optional[str] = ..., media: _Optional[str] = ..., rpc: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., available: _Optional[bool] = ..., enable_command: _Optional[str] = ..., builtin: _Optional[bool] = ...) -> None: ...

class CapabilitiesResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskCapability]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskCapability, _Mapping]]] = ...) -> None: ...
