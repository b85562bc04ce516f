// Selects the photographs from the extracted Debian packages, resizes the training photos to a
// short side of 384 px (Lanczos, sharp), copies the held-out photos unchanged, and writes
// data-manifest.json: package, version, path inside the package, sha256 of the original, licence
// (from the package's debian/copyright) and the prepared file's sha256. See README.md ("Data").
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const work = process.argv[2];
const here = dirname(fileURLToPath(import.meta.url));
const TRAIN_SHORT_SIDE = 384;

const PLASMA = 'usr/share/wallpapers';
const LOMIRI = 'usr/share/backgrounds';
const MATE = 'usr/share/backgrounds/mate/nature';
const SKIMAGE = 'usr/lib/python3/dist-packages/skimage/data';

// Photographs only: abstract renders and illustrations of these packages are left out
// (lomiri: analogpattern, umang; plasma: Autumn, Flow, Honeywave, PastelHills, SafeLanding, Shell).
const TRAIN = [
  ...[
    'Bridge_by_Sander_Klootwijk.jpg',
    'Dragonfly_by_Bolly.jpg',
    'Picture_0B_by_freespace.jpg',
    'Picture_1A_by_freespace.jpg',
    'Wine_by_Jakkub_Mede.jpg',
    'aitzgorri_by_Aitzol_Berasategi.jpg',
    'free_by_Peter_Nerlich.jpg',
    'friends_by_Aitzol_Berasategi.jpg',
    'greentock_by_Peter_Nerlich.jpg',
    'life_by_Aitzol_Berasategi.jpg',
    'picosdeeuropa_by_Aitzol_Berasategi.jpg',
    'seeding_by_Clements_Engelhardt.jpg',
    'sunset_by_Aitzol_Berasategi.jpg',
  ].map((f) => ['lomiri-wallpapers-16.04', `${LOMIRI}/${f}`, `16.04/${f}`]),
  ...[
    'BytheWater',
    'ColdRipple',
    'ColorfulCups',
    'DarkestHour',
    'EveningGlow',
    'FallenLeaf',
    'Grey',
    'Kite',
    'OneStandsOut',
    'Path',
    'Volna',
    'summer_1am',
  ].map((d) => ['plasma-workspace-wallpapers', `${PLASMA}/${d}/contents/images/LARGEST.jpg`, `${d}/*`]),
  ...[
    'Aqua',
    'Blinds',
    'Dune',
    'FreshFlower',
    'Garden',
    'GreenMeadow',
    'LadyBird',
    'RainDrops',
    'Storm',
    'TwoWings',
    'Wood',
    'YellowFlower',
  ].map((f) => ['mate-backgrounds', `${MATE}/${f}.jpg`, `nature/${f}.jpg`]),
];
const HELD_OUT = ['astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png'].map(
  (f) => ['python3-skimage', `${SKIMAGE}/${f}`, `skimage/data/${f}`],
);

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function version(pkg) {
  const deb = readdirSync(join(work, 'debs')).find((f) => f.startsWith(`${pkg}_`));
  return execFileSync('dpkg-deb', ['-f', join(work, 'debs', deb), 'Version'], { encoding: 'utf8' }).trim();
}

/** The License of the first debian/copyright stanza whose Files patterns match `upstreamPath`. */
function licence(pkg, upstreamPath) {
  const text = readFileSync(join(work, 'x', pkg, 'usr/share/doc', pkg, 'copyright'), 'utf8');
  const stanzas = text.split(/\n\s*\n/).map((s) => ({
    files: /^Files:\s*([\s\S]*?)(?=^\S|$(?![\s\S]))/m.exec(s)?.[1]?.split(/\s+/).filter(Boolean) ?? [],
    license: /^License:\s*(.+)$/m.exec(s)?.[1]?.trim(),
    copyright: /^Copyright:\s*(.+)$/m.exec(s)?.[1]?.trim(),
  }));
  const match = (glob) => new RegExp(`^${glob.replace(/[.+^$()|[\]{}]/g, '\\$&').replace(/\*/g, '.*')}$`);
  const hit =
    stanzas.find((s) => s.license && s.files.some((f) => f !== '*' && match(f).test(upstreamPath))) ??
    stanzas.find((s) => s.license && s.files.includes('*'));
  return { license: hit?.license ?? 'UNKNOWN', copyright: hit?.copyright ?? null };
}

function resolveLargest(pkg, path) {
  if (!path.includes('LARGEST')) return path;
  const dir = dirname(path);
  const files = readdirSync(join(work, 'x', pkg, dir)).filter((f) => /^\d+x\d+\.jpg$/.test(f));
  const area = (f) =>
    f
      .split('.')[0]
      .split('x')
      .map(Number)
      .reduce((a, b) => a * b, 1);
  return `${dir}/${files.sort((a, b) => area(b) - area(a))[0]}`;
}

const entries = [];
const written = new Set();
for (const [role, list] of [
  ['train', TRAIN],
  ['heldout', HELD_OUT],
]) {
  mkdirSync(join(work, role), { recursive: true });
  for (const [pkg, rawPath, copyrightPath] of list) {
    const path = resolveLargest(pkg, rawPath);
    const bytes = readFileSync(join(work, 'x', pkg, path));
    const meta = await sharp(bytes).metadata();
    // The name keeps every folder below usr/share: plasma wallpapers all end in
    // contents/images/WxH.jpg, so a shorter suffix made them overwrite each other.
    const stem = `${pkg.split('-')[0]}-${path
      .split('/')
      .filter((part) => part !== '' && part !== 'usr' && part !== 'share')
      .join('-')
      .replace(/\.[a-z]+$/, '')}`.replace(/[^A-Za-z0-9_.-]/g, '_');
    const out = join(work, role, `${stem}.png`);
    if (written.has(out)) throw new Error(`two source photos map to ${out}; make the names unique`);
    written.add(out);
    let pipeline = sharp(bytes).rotate().removeAlpha().toColourspace('srgb');
    if (role === 'train') {
      const short = Math.min(meta.width, meta.height);
      const f = TRAIN_SHORT_SIDE / short;
      pipeline = pipeline.resize(Math.round(meta.width * f), Math.round(meta.height * f), {
        kernel: 'lanczos3',
      });
    }
    const prepared = await pipeline.png({ compressionLevel: 9 }).toBuffer();
    writeFileSync(out, prepared);
    entries.push({
      role,
      package: pkg,
      version: version(pkg),
      path: `/${path}`,
      size: [meta.width, meta.height],
      sha256: sha256(bytes),
      ...licence(pkg, copyrightPath),
      prepared: { file: `${role}/${basename(out)}`, sha256: sha256(prepared) },
    });
  }
}
const manifest = {
  description:
    'Every image used to train and evaluate @dcae/model-tiny: Debian bookworm packages fetched with apt-get download (not installed). ' +
    `Training photos are resized to a short side of ${TRAIN_SHORT_SIDE} px (sharp lanczos3); held-out photos are used as shipped.`,
  script: 'packages/model-tiny/scripts/prepare-data.sh',
  train: entries.filter((e) => e.role === 'train').length,
  heldout: entries.filter((e) => e.role === 'heldout').length,
  files: entries,
};
writeFileSync(join(here, '..', 'data-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`prepared ${manifest.train} training and ${manifest.heldout} held-out photos in ${work}`);
