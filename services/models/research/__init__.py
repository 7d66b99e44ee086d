"""The source document's own models as trainable PyTorch code (the [export] extra; serving never needs it):
MemeFier (3.1), InDistill (3.2.1), MV-SD (3.3) and ALBEF's unimodal encoders (4.1.1). Each has its
dataset loaders, losses, metrics, a training entry point and an ONNX export into the model repository."""
