"""Builds a CPU copy of a Triton model repository for the compose `cpu` profile.

Triton cannot override `instance_group` from its command line, and a KIND_GPU instance fails to
load on a machine without a GPU. Rather than keep a second, hand-written set of configs in step
with `triton_models/`, this rewrites each committed `config.pbtxt` with Triton's own protobuf
(every instance group -> KIND_CPU, GPU ids and GPU execution accelerators dropped, nothing else
touched) into DEST, and links everything else (version directories with the weights, labels,
tokenizers) back to SOURCE. The real tritonserver then serves DEST with SOURCE mounted at the same
path, so the links resolve.

    python deploy/triton_cpu_repository.py /models /cpu-models
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

CONFIG_FILE = "config.pbtxt"


def cpu_config(config: model_config_pb2.ModelConfig) -> model_config_pb2.ModelConfig:
    """The same config with every model instance on the CPU."""
    out = model_config_pb2.ModelConfig()
    out.CopyFrom(config)
    for group in out.instance_group:
        group.kind = model_config_pb2.ModelInstanceGroup.KIND_CPU
        del group.gpus[:]
    if out.HasField("optimization") and out.optimization.HasField("execution_accelerators"):
        # TensorRT / CUDA accelerators exist only on the GPU.
        del out.optimization.execution_accelerators.gpu_execution_accelerator[:]
    return out


def cpu_config_text(text: str, origin: str = "<config>") -> str:
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ValueError(f"{origin}: not a valid Triton model config: {exc}") from exc
    return text_format.MessageToString(cpu_config(config))


def build(source: Path, dest: Path) -> list[str]:
    """Writes the CPU repository; returns the model names written. Broken configs are reported on
    stderr and left out (Triton would refuse them anyway)."""
    source, dest = source.resolve(), dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.iterdir():  # dest is a volume: replace its contents, keep the mount point
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    written: list[str] = []
    for model_dir in sorted(p for p in source.iterdir() if (p / CONFIG_FILE).is_file()):
        try:
            text = cpu_config_text((model_dir / CONFIG_FILE).read_text(encoding="utf-8"), str(model_dir / CONFIG_FILE))
        except (OSError, ValueError) as exc:
            print(f"skipping {model_dir.name}: {exc}", file=sys.stderr)
            continue
        target = dest / model_dir.name
        target.mkdir()
        (target / CONFIG_FILE).write_text(text, encoding="utf-8")
        for entry in model_dir.iterdir():
            if entry.name != CONFIG_FILE:
                (target / entry.name).symlink_to(entry)
        written.append(model_dir.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the model repository (triton_models/)")
    parser.add_argument("dest", type=Path, help="where to write the CPU repository")
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"{args.source} is not a directory")
    names = build(args.source, args.dest)
    print(f"CPU model repository in {args.dest}: {', '.join(names) or 'no models'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
