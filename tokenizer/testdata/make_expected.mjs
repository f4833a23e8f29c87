// Writes the expected token ids that tokenizer/test_tokenizer checks against, computed by an
// independent implementation: the npm package tiktoken@1.0.22 (a WASM build of OpenAI's Rust
// tiktoken), encoding "gpt2", encode_ordinary. js-tiktoken@1.0.21 (a pure JS port using the JS
// regex engine) is run too, as a cross-check; where the two disagree the WASM build (the real
// tiktoken) is taken and the case is listed on stderr.
// Usage (from the repo root):
//   mkdir -p /tmp/tk && (cd /tmp/tk && npm install tiktoken@1.0.22 js-tiktoken@1.0.21)
//   NODE_PATH=/tmp/tk/node_modules node tokenizer/testdata/make_expected.mjs tokenizer/testdata
// Output: expected.tsv (hand-picked cases) and random.tsv (200 seeded random strings); each line
// is the escaped string, a TAB, the ids separated by spaces. Escapes: \\ \t \n \r and \u{HEX}
// (used for every control character and every whitespace other than the plain space).
import { createRequire } from "module";
import fs from "fs";
import path from "path";

const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "x.js"));
const { get_encoding } = require("tiktoken");
const { getEncoding } = require("js-tiktoken");
const wasm = get_encoding("gpt2");
const js = getEncoding("gpt2");
const outDir = process.argv[2] || ".";

function escape(s) {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    if (ch === "\\") out += "\\\\";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || (ch !== " " && /\s/u.test(ch)) || (cp >= 0x2028 && cp <= 0x2029))
      out += `\\u{${cp.toString(16).toUpperCase()}}`;
    else out += ch;
  }
  return out;
}

function encodeBoth(s) {
  const a = Array.from(wasm.encode_ordinary(s));
  const b = js.encode(s, [], []);
  if (a.join(" ") !== b.join(" ")) console.error(`js-tiktoken differs from tiktoken on: ${escape(s)}`);
  return a;
}

function writeTsv(file, strings) {
  const lines = strings.map((s) => `${escape(s)}\t${encodeBoth(s).join(" ")}`);
  fs.writeFileSync(path.join(outDir, file), lines.join("\n") + "\n");
  console.error(`wrote ${strings.length} cases to ${path.join(outDir, file)}`);
}

// Hand-picked cases: each exercises one part of the pre-tokenisation regex or the merging.
const cases = [
  "",
  "Hello world",
  "Hello, world! How are you?",
  " leading space",
  "  two leading spaces",
  "trailing space ",
  "trailing spaces   ",
  "   ",
  " ",
  "\n",
  "\n\n\nHuman: hi\n\nAssistant: hello",
  "a  b   c    d",
  "tabs\tand\t\ttabs \t x",
  "line\r\nbreaks\r\n",
  "mixed \t\n \u00a0\u3000 spaces x",
  "  \n  !",
  "word   123",
  "it's they're we've I'm you'll he'd don't",
  "IT'S THEY'RE WE'VE I'M YOU'LL HE'D DON'T",
  "'s't're've'm'll'd",
  "''s  ' s  's'",
  "rock'n'roll o'clock",
  "1234567890 12 3.14159 1,000,000 0x1F",
  "!!!??? ... --- ((( ))) <<>> @#$%^&*",
  "<|endoftext|>",
  "a<|endoftext|>b <|endoftext|> c",
  "naïve café résumé Ærøskøbing",
  "e\u0301 a\u0308\u0304 combining marks",
  "Привет, мир! Ελληνικά",
  "日本語のテキストです。中文文本。한국어 텍스트",
  "مرحبا بالعالم ١٢٣ עברית",
  "हिन्दी भाषा ๑๒๓ ภาษาไทย",
  "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇩🇪",
  "math ∑∫√∞ ≤≥ ½ ² Ⅻ ３",
  "mixed123abc456!@#def",
  "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 𐍈 𠀀𠀁",
  "\u0000\u0001\u007f control",
  "\u2028\u2029\u0085\u000b\u000c",
  "Unicode 16: \u1c89 \u{10d50}\u{10d51} \u{16d70}\u{16d71} \u{105c0}",
  "x".repeat(100),
  " ".repeat(50) + "y",
  "\n".repeat(20),
  "ab".repeat(40) + " " + "0".repeat(30),
  "a".repeat(3000),
  " ".repeat(3000) + "z",
  "!?".repeat(1000),
  "The quick brown fox jumps over the lazy dog. " +
    "Antidisestablishmentarianism and pneumonoultramicroscopicsilicovolcanoconiosis.",
];

// Seeded random strings, built from fragments that stress the regex and the merges.
let seed = 12345;
function rand() {  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const words = ["the", "The", "of", "and", "assistant", "human", "tokenizer", "preference", "x", "I", "you",
  "hello", "world", "don", "can", "ünïcödé", "日本", "données", "Москва", "αβγ", "ok"];
const spaces = [" ", " ", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b", "   \n"];
const puncts = [".", ",", "!", "?", "'", "'s", "'S", "'re", "'ll", "'d", "'ve", "'m", "'t", "\"", "(", ")", "...",
  "-", "—", "…", "«»", "#", "$", "%", "&", "*", "<|", "|>", "<|endoftext|>", "\\", "/", "~", "`"];
const numbers = ["0", "7", "42", "2024", "3.14", "١٢٣", "３", "²", "Ⅻ", "½", "𝟙", "99999999"];
const others = ["😀", "👍🏽", "👨‍👩‍👧", "❤️", "e\u0301", "\u0308", "한국", "ไทย", "ह\u093f", "\u200d", "\ufeff", "\u{e0041}",
  "\u1c89", "\u{10d50}", "\u{16d70}"];
function randomCodePoint() {
  for (;;) {
    const r = rand();
    let cp;
    if (r < 0.3) cp = 0x80 + Math.floor(rand() * 0x780);  // 2-byte UTF-8
    else if (r < 0.7) cp = 0x800 + Math.floor(rand() * 0xf800);  // BMP
    else if (r < 0.8) cp = 0x10000 + Math.floor(rand() * 0x10000);  // plane 1
    else if (r < 0.9) cp = 0x20000 + Math.floor(rand() * 0x20000);  // planes 2-3
    else cp = 0x40000 + Math.floor(rand() * 0xd0000);  // planes 4-16
    if (cp < 0xd800 || cp > 0xdfff) return String.fromCodePoint(cp);
  }
}
const randomStrings = [];
for (let i = 0; i < 200; i++) {
  const n = 1 + Math.floor(rand() * 25);
  let s = "";
  for (let k = 0; k < n; k++) {
    const r = rand();
    if (r < 0.3) s += pick(words);
    else if (r < 0.5) s += pick(spaces);
    else if (r < 0.65) s += pick(puncts);
    else if (r < 0.75) s += pick(numbers);
    else if (r < 0.85) s += pick(others);
    else s += randomCodePoint();
  }
  randomStrings.push(s);
}

writeTsv("expected.tsv", cases);
writeTsv("random.tsv", randomStrings);
