// tap coverage map (.taprc `coverage-map`): which compiled files a test file's coverage is
// recorded for. A unit test of a workspace covers that workspace's own src/ only (what another
// workspace's tests happen to execute does not count for it); the end-to-end suite under
// test/ covers nothing. Paths are relative to the repository root, forward slashes.
// The compiled JavaScript is measured; tap maps it back to src/*.ts through the source maps.
export default function coverageMap(testFile) {
  const m = /^((?:packages|connectors)\/[^/]+|agent)\/dist\/test\//.exec(testFile);
  return m ? [`${m[1]}/dist/src/**/*.js`] : null;
}
