// Writes the 1 MB benchmark text: the tokenizer golden corpus (every
// script, code, numbers, emoji, special tokens) repeated in a fixed shuffled
// order until it reaches 1,048,576 bytes, cut at a character boundary.
//   node make-text.mjs OUT.txt
import fs from "fs";
import { corpus } from "../../scripts/tokenizer-goldens.mjs";

const texts = corpus().filter((t) => t.length > 0);
let out = "", seed = 12345, bytes = 0;
while (bytes < 1 << 20) {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  const t = texts[seed % texts.length] + (seed % 3 === 0 ? "\n" : " ");
  out += t;
  bytes += Buffer.byteLength(t, "utf8");
}
let buf = Buffer.from(out, "utf8").subarray(0, 1 << 20);
while ((buf[buf.length - 1] & 0xc0) === 0x80 || buf[buf.length - 1] >= 0xc0)
  buf = buf.subarray(0, buf.length - 1);
fs.writeFileSync(process.argv[2], buf);
