"""Face detectors shared by face recognition, face blurring and video annotation."""

from services.annotation.face_detection.base import FaceBox, FaceDetector

__all__ = ["FaceBox", "FaceDetector"]
