// Runs a TFJS graph or layers model on TensorFlow.js's pure-JS CPU backend: the reference that a
// converted ONNX graph is checked against. NODE_PATH points at the cache's node_modules.
// usage: node run_tfjs.js SPEC.json
//   SPEC: {model: model.json, kind: "graph"|"layers", inputs: {name: {file, shape}}, outputs: [names],
//          out_dir}; inputs and outputs are raw little-endian float32 files; out_dir gets 0.bin, 1.bin,
//          ... in the order of `outputs`, and shapes.json.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');
const layers = require('@tensorflow/tfjs-layers');

function artifacts(modelPath) {
  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const weightSpecs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return { ...json, weightSpecs, weightData };
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await tf.setBackend('cpu');
  const handler = { load: async () => artifacts(spec.model) };
  const feeds = {};
  for (const [name, item] of Object.entries(spec.inputs)) {
    const raw = fs.readFileSync(item.file);
    const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    feeds[name] = tf.tensor(data, item.shape, 'float32');
  }
  let results;
  if (spec.kind === 'layers') {
    const model = await layers.loadLayersModel(handler);
    const sub = layers.model({ inputs: model.inputs, outputs: spec.outputs.map((n) => model.getLayer(n).output) });
    results = sub.predict(Object.values(feeds)[0]);
  } else {
    const model = await converter.loadGraphModel(handler);
    results = await model.executeAsync(feeds, spec.outputs);
  }
  if (!Array.isArray(results)) results = [results];
  fs.mkdirSync(spec.out_dir, { recursive: true });
  const shapes = [];
  for (let i = 0; i < results.length; i += 1) {
    const values = await tf.cast(results[i], 'float32').data();
    fs.writeFileSync(path.join(spec.out_dir, `${i}.bin`), Buffer.from(values.buffer));
    shapes.push(results[i].shape);
  }
  fs.writeFileSync(path.join(spec.out_dir, 'shapes.json'), JSON.stringify(shapes));
}

main().catch((err) => { console.error(String((err && err.stack) || err)); process.exit(1); });
