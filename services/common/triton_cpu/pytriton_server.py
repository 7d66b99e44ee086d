"""Runs inside the PyTriton virtual environment (numpy<2), NOT the project's: it imports only
pytriton, onnxruntime, numpy and the protobuf/tritonclient that pytriton brings.

Binds every installed model of a Triton model repository to an ONNX Runtime session and serves
them with the real `tritonserver` that the nvidia-pytriton wheel bundles. Tensor names, dtypes,
shapes and batching come from each model's own config.pbtxt, so clients see the same models a GPU
Triton would serve from the same repository.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig
from tritonclient.grpc import model_config_pb2

log = logging.getLogger("maam.triton-cpu")

DTYPES = {
    "TYPE_FP32": np.float32,
    "TYPE_FP16": np.float16,
    "TYPE_FP64": np.float64,
    "TYPE_INT64": np.int64,
    "TYPE_INT32": np.int32,
    "TYPE_INT16": np.int16,
    "TYPE_INT8": np.int8,
    "TYPE_UINT8": np.uint8,
    "TYPE_BOOL": np.bool_,
    "TYPE_STRING": np.bytes_,
}


def _config(model_dir: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((model_dir / "config.pbtxt").read_text(encoding="utf-8"), config)
    return config


def _weights(model_dir: Path, config: model_config_pb2.ModelConfig) -> Path | None:
    filename = config.default_model_filename or "model.onnx"
    versions = sorted((int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
    for version in versions:
        if (model_dir / str(version) / filename).is_file():
            return model_dir / str(version) / filename
    return None


def _tensors(specs) -> list[Tensor]:
    tensors = []
    for spec in specs:
        dtype = DTYPES[model_config_pb2.DataType.Name(spec.data_type)]
        tensors.append(Tensor(name=spec.name, dtype=dtype, shape=tuple(int(d) for d in spec.dims)))
    return tensors


def _infer_func(session: ort.InferenceSession, output_names: list[str], batching: bool):
    def run(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(output_names, session.run(output_names, inputs), strict=True))

    if batching:
        # Triton's dynamic batcher hands over several requests; @batch stacks and splits them.
        return batch(run)

    def unbatched(requests):
        return [run(**dict(request.items())) for request in requests]

    return unbatched


def bind_repository(triton: Triton, repository: Path, threads: int) -> list[str]:
    bound = []
    for model_dir in sorted(p for p in repository.iterdir() if (p / "config.pbtxt").is_file()):
        config = _config(model_dir)
        weights = _weights(model_dir, config)
        if weights is None:
            log.info("skipping %s: weights not installed", model_dir.name)
            continue
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(weights), sess_options=options, providers=["CPUExecutionProvider"])
        output_names = [o.name for o in config.output] or [o.name for o in session.get_outputs()]
        batching = config.max_batch_size > 0
        batcher = DynamicBatcher(
            max_queue_delay_microseconds=config.dynamic_batching.max_queue_delay_microseconds
        )
        triton.bind(
            model_name=model_dir.name,
            infer_func=_infer_func(session, output_names, batching),
            inputs=_tensors(config.input),
            outputs=_tensors(config.output),
            config=ModelConfig(
                batching=batching,
                max_batch_size=max(config.max_batch_size, 1),
                batcher=batcher,
            ),
            strict=True,
        )
        bound.append(model_dir.name)
    return bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8010)
    parser.add_argument("--metrics-port", type=int, default=8012)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads per model")
    parser.add_argument("--log-verbose", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    config = TritonConfig(
        grpc_address=args.host,
        grpc_port=args.grpc_port,
        http_address=args.host,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        log_verbose=args.log_verbose,
        exit_on_error=True,
    )
    with Triton(config=config) as triton:
        bound = bind_repository(triton, args.repository.resolve(), args.threads)
        log.info("serving %d model(s) on %s:%d: %s", len(bound), args.host, args.grpc_port, ", ".join(bound))
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            triton.serve()
        except KeyboardInterrupt:
            log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
