"""Generates the committed gRPC stubs from protos/media_annotation.proto (`make protos`)."""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = Path("protos") / "media_annotation.proto"
GENERATED = ("media_annotation_pb2.py", "media_annotation_pb2.pyi", "media_annotation_pb2_grpc.py")


def generate(out_dir: Path, repo_root: Path = REPO_ROOT) -> list[Path]:
    """Writes the stubs under out_dir/protos/ and returns their paths.

    The proto is compiled relative to the repository root so that the generated grpc module
    imports `protos.media_annotation_pb2`, the package the stubs live in.
    """
    (out_dir / "protos").mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{repo_root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(repo_root / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    return [out_dir / "protos" / name for name in GENERATED]


if __name__ == "__main__":
    for path in generate(REPO_ROOT):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    sys.exit(0)
