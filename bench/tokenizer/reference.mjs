// Times the reference implementation, @huggingface/tokenizers (npm, a
// development-time tool; see scripts/tokenizer-goldens.mjs), on the same
// text as v4-bench-tokenizer and prints one JSON line.
//   NODE_PATH=/tmp/hftok/node_modules node reference.mjs TOKENIZER_DIR TEXT
import fs from "fs";
import { createRequire } from "module";

const require = createRequire(process.env.NODE_PATH + "/");
const { Tokenizer } = require("@huggingface/tokenizers");
const [dir, textPath] = process.argv.slice(2);
const tj = JSON.parse(fs.readFileSync(dir + "/tokenizer.json", "utf8"));
const tok = new Tokenizer(tj, {});
const text = fs.readFileSync(textPath, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const time = () => {
  const t0 = process.hrtime.bigint();
  const ids = tok.encode(text, {add_special_tokens: false}).ids;
  return [Number(process.hrtime.bigint() - t0) / 1e9, ids.length];
};
const [cold, tokens] = time();
let total = 0, runs = 0;
while (total < 2.0 || runs < 3) {
  total += time()[0];
  ++runs;
}
console.log(JSON.stringify({
  implementation: "@huggingface/tokenizers " +
      JSON.parse(fs.readFileSync(process.env.NODE_PATH +
          "/@huggingface/tokenizers/package.json")).version +
      " (node " + process.version + ")",
  text_bytes: bytes, tokens,
  cold_seconds: cold,
  warm_seconds: total / runs,
  warm_bytes_per_second: bytes / (total / runs),
}));
