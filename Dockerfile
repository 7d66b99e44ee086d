# syntax=docker/dockerfile:1
# One image for the four MAAM services (annotation, DAM, NDD, CMRR); compose picks the service
# with its command: `maam serve <name> --host 0.0.0.0 --port <port>`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A compiler for any dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/maam
ENV PATH=/opt/maam/bin:$PATH
WORKDIR /src
# Dependencies first, so editing the code does not reinstall them.
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY services ./services
# Optional extras, e.g. --build-arg MAAM_EXTRAS=gpu for onnxruntime-gpu.
ARG MAAM_EXTRAS=""
RUN pip install --upgrade pip \
 && if [ -n "$MAAM_EXTRAS" ]; then pip install ".[$MAAM_EXTRAS]"; else pip install .; fi \
 # As the Makefile: rapidocr-onnxruntime requires opencv-python, which would overwrite
 # opencv-python-headless; its other requirements are in pyproject.toml.
 && pip install --no-deps "rapidocr-onnxruntime>=1.3"
# gpu: onnxruntime and onnxruntime-gpu install the same `onnxruntime` package, and whichever comes last
# (or is removed last) breaks the other; keep only onnxruntime-gpu, reinstalled over the CUDA 12 / cuDNN 9
# runtime wheels its [cuda,cudnn] extras brought (so the image needs no CUDA base, only the host driver).
RUN case ",$MAAM_EXTRAS," in *,gpu,*) \
      version="$(pip show onnxruntime-gpu | sed -n 's/^Version: //p')" \
      && pip uninstall -y onnxruntime onnxruntime-gpu \
      && pip install --no-deps "onnxruntime-gpu==$version" \
      && python -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers()" ;; \
    esac

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/maam/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MAAM_DATA_DIR=/data \
    MAAM_MODEL_REPOSITORY=/models \
    MAAM_LOG_FORMAT=json
# libgomp: OpenMP runtime some numeric wheels expect from the system.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 maam \
 && useradd --system --uid 10001 --gid maam --home-dir /app --shell /usr/sbin/nologin maam \
 # /app/triton-cpu-models: mount point of the compose cpu profile's generated repository, made
 # here so the named volume starts owned by maam.
 && mkdir -p /data /models /app/triton-cpu-models \
 && chown -R maam:maam /data /app
COPY --from=build /opt/maam /opt/maam
# The CUDA/cuDNN libraries of a gpu build live in the nvidia-* wheels: make them findable by the loader
# (onnxruntime-gpu dlopens them by name). A CPU build has none and skips this.
RUN if [ -d /opt/maam/lib/python3.11/site-packages/nvidia ]; then \
      ls -d /opt/maam/lib/python3.11/site-packages/nvidia/*/lib > /etc/ld.so.conf.d/maam-nvidia.conf && ldconfig; \
    fi
# Helpers that run in containers but are not part of the wheel (e.g. the CPU Triton repository).
COPY deploy /app/deploy
WORKDIR /app
USER maam:maam
EXPOSE 50051 8000 8007 8008 9464
CMD ["maam", "--help"]
