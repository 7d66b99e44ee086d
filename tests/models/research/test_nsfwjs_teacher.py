"""The real InDistill teacher: nsfwjs@4.3.0's MobileNetV2 (npm package, fetched with `npm pack`) loaded into
torch reproduces TensorFlow.js running the package's own model on photos."""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest
import torch

from services.models.research.indistill.js_literal import exported_literal
from services.models.research.indistill.nsfwjs_teacher import _dequantize


def test_bundled_module_literals_are_read_without_javascript() -> None:
    source = ('!function(e){module.exports=e()}(function(){return function r(e,n,t){}({1:[function(e,q,n){q.exports='
              '{name:"x/y",shape:[2,1],ok:!0,off:!1,none:null,scale:.5,min:-1.25e-2,"quoted":"a\\"b"}},{}]},{},[1])(1)});')
    assert exported_literal(source) == {"name": "x/y", "shape": [2, 1], "ok": True, "off": False, "none": None,
                                        "scale": 0.5, "min": -0.0125, "quoted": 'a"b'}


def test_uint8_weights_are_dequantized_by_scale_and_min() -> None:
    raw = bytes([0, 2, 255]) + np.array([1.5], np.float32).tobytes()
    specs = [{"name": "q", "shape": [3], "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
             {"name": "f", "shape": [], "dtype": "float32"}]
    weights = _dequantize(raw, specs)
    assert weights["q"].tolist() == [-1.0, 0.0, 126.5] and float(weights["f"]) == 1.5
    assert base64.b64decode(base64.b64encode(raw)) == raw


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None,
                    reason="fetching nsfwjs and running TensorFlow.js need Node.js and npm")
def test_the_torch_teacher_reproduces_tensorflow_js_on_photos() -> None:
    from services.models.research.indistill.nsfwjs_teacher import LABELS
    from services.models.research.indistill.photos import as_tensor, skimage_photos
    from services.models.research.indistill.teachers import nsfwjs_network
    from services.models.research.indistill.tfjs_check import tfjs_probabilities

    teacher = nsfwjs_network()
    photos = skimage_photos()
    images = as_tensor([photos["astronaut"], photos["rocket"]], 224)
    with torch.no_grad():
        mine = teacher.module(images).numpy()
    original = tfjs_probabilities(images.numpy())
    assert np.abs(mine - original).max() < 1e-4
    assert (mine.argmax(axis=1) == original.argmax(axis=1)).all()
    assert LABELS[int(original[0].argmax())] == "Neutral"
    assert original[1, LABELS.index("Drawing")] > 0.2  # the rocket photo is partly "Drawing": outputs vary
