// nsfwjs ships each model as JS modules: `require()` of model.min.js gives the model JSON, of each
// shard module a base64 string. Writes them out as a plain TFJS model (model.json + binary shards).
// usage: node materialize.js SRC_DIR DST_DIR
const fs = require('fs');
const path = require('path');

const [src, dst] = process.argv.slice(2);
fs.mkdirSync(dst, { recursive: true });
const model = require(path.resolve(src, 'model.min.js'));
for (const group of model.weightsManifest) {
  for (const shard of group.paths) {
    const base64 = require(path.resolve(src, `${shard}.min.js`));
    if (typeof base64 !== 'string') throw new Error(`${shard}.min.js does not export a base64 string`);
    fs.writeFileSync(path.join(dst, shard), Buffer.from(base64, 'base64'));
  }
}
fs.writeFileSync(path.join(dst, 'model.json'), JSON.stringify(model));
