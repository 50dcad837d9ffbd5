#!/usr/bin/env node
// Entry point of the `gatehouse` command; the CLI lives in src/cli.ts (compiled to dist/).
import { main } from '../dist/src/cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`gatehouse: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
