"""CLIP zero-shot heads (`maam models pull clip_zeroshot`): prompt ensembles encoded once with the
installed CLIP text encoder, stored as tiny linear ONNX models over the CLIP image embedding."""
