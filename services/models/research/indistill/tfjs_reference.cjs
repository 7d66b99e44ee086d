// Runs the original nsfwjs Keras model in TensorFlow.js (pure-JS CPU backend): the reference the torch
// teacher is checked against. Usage: node tfjs_reference.cjs MODEL_DIR INPUT.f32 N OUTPUT.f32
// INPUT: N x 224 x 224 x 3 float32 (RGB in [0, 1], NHWC); OUTPUT: N x 5 float32 probabilities.
// NODE_PATH must name a node_modules holding @tensorflow/tfjs-{core,backend-cpu,layers}.
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs-core");
require("@tensorflow/tfjs-backend-cpu");
const tfl = require("@tensorflow/tfjs-layers");

async function main() {
  const [modelDir, inputPath, count, outputPath] = process.argv.slice(2);
  await tf.setBackend("cpu");
  const bundle = require(path.resolve(modelDir, "model.min.js"));
  const shards = bundle.weightsManifest.flatMap((g) =>
    g.paths.map((p) => Buffer.from(require(path.resolve(modelDir, p + ".min.js")), "base64")));
  const weights = Buffer.concat(shards);
  const model = await tfl.loadLayersModel(tf.io.fromMemory({
    modelTopology: bundle.modelTopology,
    weightSpecs: bundle.weightsManifest.flatMap((g) => g.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
  }));
  const raw = fs.readFileSync(inputPath);
  const input = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const output = model.predict(tf.tensor4d(input, [Number(count), 224, 224, 3]));
  fs.writeFileSync(outputPath, Buffer.from((await output.data()).buffer));
}

main().catch((err) => { console.error(err.message || err); process.exit(1); });
