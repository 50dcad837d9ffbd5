import t from 'tap';
import { createHash } from 'node:crypto';
import { Frontier, inclusionPathFromLeaves, rootFromInclusionPath } from '../src/merkle.js';
import { EMPTY_ROOT, leafHash, nodeHash } from '../src/hashing.js';

// Certificate Transparency reference vectors (merkle_tree_test.cc, also in trillian).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
/** [0-based leaf index, tree size, audit path] from the same reference. */
const CT_PATHS: Array<[number, number, string[]]> = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
];

/** RFC 6962 §2.1 MTH, written straight from the definition. */
function naiveRoot(leaves: Buffer[]): Buffer {
  const n = leaves.length;
  if (n === 0) return createHash('sha256').digest();
  if (n === 1) return leafHash(leaves[0]);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

/** RFC 6962 §2.1.1 PATH(m, D[n]), straight from the definition. */
function naivePath(m: number, leaves: Buffer[]): Buffer[] {
  const n = leaves.length;
  if (n <= 1) return [];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m < k ? [...naivePath(m, leaves.slice(0, k)), naiveRoot(leaves.slice(k))] : [...naivePath(m - k, leaves.slice(k)), naiveRoot(leaves.slice(0, k))];
}

t.test('empty tree root is SHA-256 of the empty string', async (t) => {
  t.equal(EMPTY_ROOT.toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(new Frontier().root().toString('hex'), EMPTY_ROOT.toString('hex'));
});

t.test('frontier reproduces the CT reference roots', async (t) => {
  const f = new Frontier();
  CT_LEAVES.forEach((leaf, i) => {
    f.append(leafHash(leaf));
    t.equal(f.root().toString('hex'), CT_ROOTS[i], `root after ${i + 1} leaves`);
  });
});

t.test('audit paths match the CT reference paths and verify', async (t) => {
  for (const [index, size, want] of CT_PATHS) {
    const leaves = CT_LEAVES.slice(0, size).map((l) => leafHash(l));
    const path = inclusionPathFromLeaves(leaves, index, size);
    t.same(
      path.map((h) => h.toString('hex')),
      want,
      `path ${index} in ${size}`,
    );
    t.equal(rootFromInclusionPath(leaves[index], index, size, path)?.toString('hex'), CT_ROOTS[size - 1]);
  }
});

t.test('frontier, paths and path verification agree with the naive definitions for sizes 1..40', async (t) => {
  const data = Array.from({ length: 40 }, (_, i) => Buffer.from(`leaf-${i}`));
  const f = new Frontier();
  for (let n = 1; n <= 40; n++) {
    f.append(leafHash(data[n - 1]));
    const prefix = data.slice(0, n);
    const root = naiveRoot(prefix);
    t.equal(f.root().toString('hex'), root.toString('hex'), `root at size ${n}`);
    // Serialisation round-trip: what restart relies on.
    t.equal(Frontier.deserialize(f.serialize()).root().toString('hex'), root.toString('hex'), `restored root at size ${n}`);
    const leaves = prefix.map((d) => leafHash(d));
    for (let m = 0; m < n; m++) {
      const path = inclusionPathFromLeaves(leaves, m, n);
      const want = naivePath(m, prefix);
      if (path.length !== want.length || path.some((h, i) => !h.equals(want[i]))) t.fail(`path ${m} of ${n} differs from the naive one`);
      const got = rootFromInclusionPath(leaves[m], m, n, path);
      if (!got || !got.equals(root)) t.fail(`path ${m} of ${n} does not verify`);
      // A wrong leaf, a wrong index or a truncated path must not verify.
      if (rootFromInclusionPath(leafHash(Buffer.from('other')), m, n, path)?.equals(root)) t.fail(`forged leaf verified at ${m}/${n}`);
      if (n > 1 && rootFromInclusionPath(leaves[m], (m + 1) % n, n, path)?.equals(root)) t.fail(`wrong index verified at ${m}/${n}`);
      if (path.length > 0 && rootFromInclusionPath(leaves[m], m, n, path.slice(1))?.equals(root)) t.fail(`short path verified at ${m}/${n}`);
    }
  }
  t.pass('all sizes checked');
});

t.test('frontier refuses an inconsistent state', async (t) => {
  t.throws(() => new Frontier(3, [EMPTY_ROOT]));
});
