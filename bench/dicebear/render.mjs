// DiceBear "adventurer" -> 512 px PNG with resvg-js, timed per render inside node.
//   node render.mjs <n> <seed-prefix> <size> <warmup>
// Prints one JSON object: per-render milliseconds (SVG, PNG end to end) and PNG sizes.
import { createAvatar } from "@dicebear/core";
import { adventurer } from "@dicebear/collection";
import { Resvg } from "@resvg/resvg-js";

const [n = "200", prefix = "seed", size = "512", warmup = "10"] = process.argv.slice(2);
const count = Number(n);
const px = Number(size);

function once(seed) {
  const t0 = process.hrtime.bigint();
  const svg = createAvatar(adventurer, { seed, size: px }).toString();
  const t1 = process.hrtime.bigint();
  const png = new Resvg(svg, { fitTo: { mode: "width", value: px } }).render().asPng();
  const t2 = process.hrtime.bigint();
  return { svgMs: Number(t1 - t0) / 1e6, pngMs: Number(t2 - t0) / 1e6, bytes: png.length };
}

for (let i = 0; i < Number(warmup); i++) once(`warmup-${prefix}-${i}`);
const svgMs = [];
const pngMs = [];
const bytes = [];
for (let i = 0; i < count; i++) {
  const r = once(`${prefix}-${i}`);
  svgMs.push(r.svgMs);
  pngMs.push(r.pngMs);
  bytes.push(r.bytes);
}
process.stdout.write(JSON.stringify({ svgMs, pngMs, bytes, node: process.version }) + "\n");
