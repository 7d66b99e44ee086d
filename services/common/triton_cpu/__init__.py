"""A real Triton server on a CPU machine: PyTriton's bundled `tritonserver`, one Python model per
repository model, each running ONNX Runtime (see `pytriton_server.py`)."""
