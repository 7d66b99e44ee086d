"""INT8 vs FP32 on a shipped model: installs `nudenet` (offline) into a temp repository, quantizes it
(static INT8, QDQ, calibrated on scikit-image photos) and prints size ratio, latency ratio and output
agreement against the FP32 baseline measured in the same run.

    python bench/models_int8.py [--quick] [--model nudenet|ppocr_cls] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.models.bench import bench
from services.models.quantize import int8_name, quantize
from services.models.shipped import install_nudenet, install_ppocr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few inputs and passes (a smoke run)")
    parser.add_argument("--model", default="nudenet", choices=("nudenet", "ppocr_cls"))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repository = Path(tmp)
        install_nudenet(repository) if args.model == "nudenet" else install_ppocr(repository)
        quantize(repository, args.model, None, limit=4 if args.quick else 32)
        count, repeats = (3, 1) if args.quick else (12, 5)
        print(f"baseline: {args.model} (fp32); candidate: {int8_name(args.model)}")
        bench(repository, args.model, int8_name(args.model), count=count, repeats=repeats, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
