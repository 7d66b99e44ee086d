"""Exporting PyTorch models to ONNX (the [export] extra): one module per model family, each verified
against the framework's own output before it is written to the repository."""
