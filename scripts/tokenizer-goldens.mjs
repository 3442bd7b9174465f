// Writes the tokenizer golden files with an independent implementation,
// @huggingface/tokenizers (npm; a development-time tool, never a test or
// runtime dependency):
//
//   npm install --prefix /tmp/hftok @huggingface/tokenizers@0.2.0
//   NODE_PATH=/tmp/hftok/node_modules node scripts/tokenizer-goldens.mjs \
//     NAME DIR/tokenizer.json OUT.json
//
// OUT.json: {"tokenizer", "generator", "cases": [{"text", "ids"}]} over the
// corpus below (>= 200 texts). decode(ids) == text is checked here too.
import fs from "fs";
import { createRequire } from "module";


export function corpus() {
  const t = [];
  // The empty string and single characters.
  t.push("", " ", "a", "\n", "\t", "  ", "\r\n");
  // English.
  t.push(
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Don't stop; we'll see what they've done. I'M SURE HE'D AGREE, SHE'LL TOO.",
    "Mr. O'Neil's dog isn't here—it's over there!",
    "naïve café résumé coöperate façade",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "UPPERCASE lowercase MixedCase camelCaseIdentifier snake_case_name",
    "Email: someone@example.com, URL: https://example.org/path?q=1&r=two#frag",
    "\"Quoted,\" she said. 'Single quotes' (parens) [brackets] {braces}",
    "Ellipsis... and em—dash and en–dash and hyphen-ated.",
    "   leading spaces and trailing spaces   ",
    "Tabs\tbetween\twords\tand\t\ttwo",
    "Line one\nLine two\n\nLine four after a blank line\n",
    "Windows line\r\nendings\r\n\r\nhere\r\n",
    "Mixed\r\n \r\n\t\r\nwhitespace\n \n",
    "A sentence with a very long word: pneumonoultramicroscopicsilicovolcanoconiosis.",
    "Punctuation!!! ??? ... ;;; ::: ,,, --- ___ +++ === ***",
    "#hashtag @mention $dollar %percent ^caret &amp *star",
    "The year 1999 and 2024, the numbers 3.14159 and -42 and 1e10.",
  );
  // Numbers of every length, alone and in text.
  let digits = "";
  for (let n = 1; n <= 24; ++n) {
    digits += String((n * 7) % 10);
    t.push(digits);
  }
  t.push("1,234,567,890", "0.000001", "$1,000.99", "+1 (555) 123-4567",
         "12 345 678", "2024-06-30T12:34:56Z", "v1.2.3-rc.4", "0x7fffffff",
         "ver 10 100 1000 10000 100000", "x1y22z333w4444");
  // Whitespace runs.
  for (const n of [2, 3, 4, 5, 8, 16, 33]) t.push("a" + " ".repeat(n) + "b");
  t.push(" ".repeat(7), "\t\t\t", "\n\n\n\n", " \n \n ", "end with space ",
         "\u00a0non-breaking\u00a0space", "ideographic\u3000space",
         "line\u2028separator");
  // Chinese.
  t.push(
    "你好，世界！",
    "深度求索是一家人工智能公司。",
    "我们今天去公园散步，天气非常好。",
    "机器学习和深度学习是人工智能的重要分支。",
    "这是一个测试句子，包含标点符号：逗号、句号。",
    "中文和English混合的句子123。",
    "繁體中文：電腦、網路、軟體。",
    "《红楼梦》是中国古典四大名著之一。",
    "价格是￥128.50元。",
    "龘靐齉齾爩鱻麤龗灪",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "一二三四五六七八九十百千万亿",
  );
  // Japanese.
  t.push(
    "こんにちは、世界！",
    "私は日本語を勉強しています。",
    "カタカナとひらがなと漢字が混ざった文章です。",
    "東京スカイツリーは634メートルです。",
    "ｶﾀｶﾅ半角カナ",
    "「かぎかっこ」と『二重かぎかっこ』",
    "吾輩は猫である。名前はまだ無い。",
    "ラーメンを食べたい！",
    "コンピューター・プログラミング",
    "令和6年4月1日",
  );
  // Korean.
  t.push(
    "안녕하세요, 세계!",
    "저는 한국어를 배우고 있습니다.",
    "대한민국의 수도는 서울입니다.",
    "한글은 세종대왕이 만들었습니다.",
    "오늘 날씨가 정말 좋네요 ㅎㅎ",
    "ㄱㄴㄷㄹ ㅏㅑㅓㅕ",
    "프로그래밍 언어 C++와 Python",
  );
  // Russian and other Cyrillic.
  t.push(
    "Привет, мир!",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Москва — столица России.",
    "ПРОПИСНЫЕ БУКВЫ и строчные буквы",
    "Українська мова: їжак, ґанок, є.",
    "Я люблю программировать на C++ и Rust.",
    "Число 2024 и слово «кавычки».",
  );
  // Arabic and Hebrew (right to left).
  t.push(
    "مرحبا بالعالم",
    "اللغة العربية جميلة جداً.",
    "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
    "الأرقام العربية: ٠١٢٣٤٥٦٧٨٩",
    "كتب الطالب الدرس، ثم ذهب إلى المدرسة؟",
    "שלום עולם",
    "עִבְרִית עם ניקוד",
  );
  // Thai and other South/South-East Asian scripts.
  t.push(
    "สวัสดีชาวโลก",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "กรุงเทพมหานคร อมรรัตนโกสินทร์",
    "ผมชอบกินข้าวผัดกุ้ง",
    "๑๒๓๔๕ ตัวเลขไทย",
    "नमस्ते दुनिया",
    "हिन्दी भाषा में संयुक्ताक्षर: क्ष त्र ज्ञ",
    "தமிழ் மொழி",
    "Xin chào thế giới, tiếng Việt có dấu.",
  );
  // Greek and others.
  t.push("Γειά σου Κόσμε", "Ελληνικά: αβγδε ΑΒΓΔΕ", "Ünïcödé Ëxämplé",
         "Ꭰꭱ Cherokee", "ᚠᚢᚦ runes", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝒜𝒷𝒸");
  // Code.
  t.push(
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\nint main(void) {\n  printf(\"hello\\n\");\n  return 0;\n}\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "const f = async (x) => { await g(x?.y ?? 0); };",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "fn main() {\n\tlet v: Vec<u32> = (0..10).map(|x| x * x).collect();\n}\n",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done\n",
    "<html><body><div class=\"x\">Text &amp; more</div></body></html>",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
    "template <typename T> constexpr T max(T a, T b) { return a > b ? a : b; }",
    "    indented code\n        more indented\n\tTabbed\n",
    "/* block comment */ // line comment\n-- sql comment\n# python",
    "if (a != b && c <= d || !e) return -1;",
    "git commit -m \"Fix bug #123\" && git push origin main",
    "$ ls -la /usr/local/bin | grep -v '^d' > out.txt 2>&1",
    "matrix[i][j] += alpha * x[i] * y[j];",
    "print(f\"{name!r:>10} = {value:.3f}\")",
    "a_b_c__d___e",
    "CamelCaseXMLHttpRequest parseHTTPResponse getURLForID",
  );
  // Emoji: plain, skin tones, ZWJ sequences, flags, keycaps.
  t.push(
    "😀😃😄😁",
    "I ❤️ you 💕",
    "👍👍🏻👍🏽👍🏿",
    "👨‍👩‍👧‍👦 family",
    "👩‍💻 coder 🧑‍🚀 astronaut",
    "🏳️‍🌈 🏴‍☠️",
    "🇯🇵🇺🇸🇩🇪🇨🇳🇰🇷",
    "flags 🇫🇷 and 🇧🇷 inline",
    "1️⃣2️⃣3️⃣ #️⃣",
    "emoji🙂without🙃spaces",
    "🚀 launch at 10:00 ✅ done ❌ failed ⚠️ warning",
    "♠♥♦♣ ★☆ ✓✗ ☀☁☂",
  );
  // Combining marks.
  t.push(
    "e\u0301 a\u0300 o\u0308 n\u0303",
    "Ze\u0301\u0301\u0301 zalgo t\u0336e\u0336x\u0336t\u0336",
    "cafe\u0301 vs caf\u00e9",
    "a\u0332b\u0332c\u0332 underlined",
    "\u0301 leading combining mark",
    "x\u20d7 vector arrow, q\u0307 dot",
  );
  // Full-width and compatibility characters.
  t.push(
    "ＡＢＣ ａｂｃ １２３",
    "全角！？（）［］｛｝",
    "Ｈｅｌｌｏ，　Ｗｏｒｌｄ！",
    "①②③ ⅰⅱⅲ Ⅳ ½ ¼ ² ³",
    "ﬁ ﬂ ligatures",
    "™ © ® ° ± × ÷ µ",
  );
  // Mixed scripts and misc.
  t.push(
    "Mixing 中文, 日本語, 한국어, русский, العربية and ไทย in one line.",
    "Temperatures: -5°C → 23°F; ≤ ≥ ≠ ≈ ∞ ∑ ∫ √",
    "Currency: € £ ¥ ₹ ₽ ₩ ₿ $",
    "Arrows ← ↑ → ↓ ↔ ⇒ ⇐",
    "Box drawing: ┌─┐│└┘",
    "Math: ∀x∈ℝ, ∃y: x² + y² = r²",
    "Braille: ⠓⠑⠇⠇⠕",
    "Zero\u200bwidth\u200cjoiner\u200dtest",
    "Soft\u00adhyphen",
    "Tab\tand\u000bvertical\u000cform feed",
  );
  // Special tokens written inline (both tokenizers' spellings; each is
  // plain text to the other).
  t.push(
    "<｜begin▁of▁sentence｜>Hello",
    "<｜User｜>What is 2+2?<｜Assistant｜>",
    "<｜User｜>hi<｜Assistant｜></think>Hello!<｜end▁of▁sentence｜>",
    "text<｜end▁of▁sentence｜>more text",
    "<｜User｜><｜User｜>doubled",
    "<｜User partial special token",
    "<think>\nreasoning here\n</think>\n\nanswer",
    "<|endoftext|>",
    "before<|endoftext|>after",
    "<|endofprompt|> and <|endoftext|><|endoftext|>",
    "<|im_start|>user\nhi<|im_end|>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f",
    "<｜fim▁begin｜>def f():<｜fim▁hole｜>\n<｜fim▁end｜>",
  );
  // Longer paragraphs.
  t.push(
    "In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. ".repeat(3),
    "自然语言处理（NLP）是计算机科学、人工智能和语言学的交叉领域。它研究如何让计算机理解、生成人类语言。".repeat(2),
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.\n\n".repeat(2),
    "word ".repeat(50),
    "ab".repeat(100),
    "=".repeat(80),
    "-".repeat(33) + "\n" + "#".repeat(17),
    "0".repeat(64),
  );
  return t;
}

function main() {
  const require = createRequire(process.env.NODE_PATH + "/");
  const { Tokenizer } = require("@huggingface/tokenizers");
  const version = JSON.parse(fs.readFileSync(
      process.env.NODE_PATH + "/@huggingface/tokenizers/package.json")).version;
  const [name, tokenizerPath, outPath] = process.argv.slice(2);
  if (!outPath) {
    console.error("usage: tokenizer-goldens.mjs NAME tokenizer.json OUT.json");
    process.exit(2);
  }
  const tj = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
  const tok = new Tokenizer(tj, {clean_up_tokenization_spaces: false});
  const cases = [];
  for (const text of corpus()) {
    const ids = tok.encode(text, {add_special_tokens: false}).ids;
    const back = ids.length === 0 ? "" : tok.decode(ids, {skip_special_tokens: false,
                                  clean_up_tokenization_spaces: false});
    if (back !== text) {
      console.error(`decode(encode(t)) != t for ${JSON.stringify(text)}`);
      process.exit(1);
    }
    cases.push({text, ids});
  }
  const out = {tokenizer: name,
               generator: `@huggingface/tokenizers ${version}`,
               cases};
  // One case per line keeps diffs readable.
  const lines = cases.map((c) => "  " + JSON.stringify(c));
  fs.writeFileSync(outPath,
      `{"tokenizer": ${JSON.stringify(name)},\n "generator": ${JSON.stringify(out.generator)},\n "cases": [\n` +
      lines.join(",\n") + "\n]}\n");
  console.log(`${outPath}: ${cases.length} texts, ` +
              `${cases.reduce((n, c) => n + c.ids.length, 0)} tokens`);
}

// Run as a script (bench/tokenizer/make-text.mjs imports the corpus only).
if (import.meta.url === "file://" + process.argv[1]) main();
