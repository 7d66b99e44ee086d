"""Blurring face regions of decoded frames.

The pipeline blurs with a box filter (source document 3.4.2: linear time whatever the radius) and,
for the usual 4:2:0 frames, directly on the Y, U and V planes, so a frame with a face is never
converted to RGB and back; the encoder takes the result as it is. Frames without faces are not
touched at all. `gaussian_blur_rgb` is the per-frame baseline's blur (PIL GaussianBlur).
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from PIL import Image, ImageFilter

from services.annotation.face_blur.boxes import pixel_regions

# The box kernel spans this fraction of the face's smaller side: features are gone, the blob of
# the head stays (what people expect of a blurred face).
KERNEL_FRACTION = 0.4
MIN_KERNEL = 5

PLANAR_420 = ("yuv420p", "yuvj420p")


def kernel_size(region_w: int, region_h: int) -> int:
    return max(MIN_KERNEL, int(min(region_w, region_h) * KERNEL_FRACTION)) | 1


def _box_blur_plane(plane: np.ndarray, regions: list[tuple[int, int, int, int]], divisor: int) -> None:
    for x0, y0, x1, y1 in regions:
        x0, y0 = x0 // divisor, y0 // divisor
        x1, y1 = -(-x1 // divisor), -(-y1 // divisor)
        roi = plane[y0:y1, x0:x1]
        if roi.size == 0:
            continue
        k = kernel_size(x1 - x0, y1 - y0)
        # Twice: a box filter applied twice is a triangle filter, no blocky edges on the face.
        roi[:] = cv2.blur(cv2.blur(roi, (k, k), borderType=cv2.BORDER_REPLICATE), (k, k),
                          borderType=cv2.BORDER_REPLICATE)


def box_blur_frame(frame: av.VideoFrame, boxes: np.ndarray, wrap: bool = False) -> av.VideoFrame:
    """A new frame (same pts and time base) with every box blurred; the decoder's frame is left as
    it is, since it may still be a reference for frames not decoded yet."""
    width, height = frame.width, frame.height
    regions = [r for box in boxes for r in pixel_regions(box, width, height, wrap)]
    if not regions:
        return frame
    if frame.format.name in PLANAR_420 and width % 2 == 0 and height % 2 == 0:
        data = frame.to_ndarray()  # (H * 3 / 2, W): Y, then U and V at half resolution
        flat = data.reshape(-1)
        luma = width * height
        chroma = luma // 4
        y = flat[:luma].reshape(height, width)
        u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
        v = flat[luma + chroma :].reshape(height // 2, width // 2)
        _box_blur_plane(y, regions, 1)
        _box_blur_plane(u, regions, 2)
        _box_blur_plane(v, regions, 2)
        out = av.VideoFrame.from_ndarray(data, format=frame.format.name)
    else:
        rgb = frame.to_ndarray(format="rgb24")
        _box_blur_plane(rgb, regions, 1)
        out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out


def gaussian_blur_rgb(rgb: np.ndarray, boxes: np.ndarray, wrap: bool = False) -> np.ndarray:
    """The baseline: PIL GaussianBlur on each face crop of an RGB frame (modified in place)."""
    height, width = rgb.shape[:2]
    for box in boxes:
        for x0, y0, x1, y1 in pixel_regions(box, width, height, wrap):
            crop = Image.fromarray(rgb[y0:y1, x0:x1])
            radius = max(2, min(x1 - x0, y1 - y0) // 5)
            rgb[y0:y1, x0:x1] = np.asarray(crop.filter(ImageFilter.GaussianBlur(radius)))
    return rgb
