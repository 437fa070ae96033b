#!/usr/bin/env node
// `npx sqs-circuit-breaker <command>`: runs `breaker`, the operator CLI, from the prebuilt binary
// this package ships for the machine's architecture (assets/cli/<arch>/breaker, Linux x86_64 and
// arm64; built by 'npm run build:cli' in the repository). Arguments, standard streams and the exit
// status pass through unchanged.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
// the package's own check of a shipped binary, with the fix for a repository or an npm install
const { shippedAssetPath } = require('../lib/assets');

/** Node's names for the architectures the CLI is built for, and the asset folder of each. */
const ARCHITECTURES = { x64: 'x86_64', arm64: 'arm64' };

function fail(message) {
  console.error(`sqs-circuit-breaker: ${message}`);
  process.exit(1);
}

const arch = ARCHITECTURES[process.arch];
if (process.platform !== 'linux' || !arch) {
  fail(
    `the prebuilt breaker CLI runs on Linux x86_64 and arm64, not on ${process.platform} ${process.arch}; ` +
      "build it from the repository's sources instead: cargo install --path lambdas/cli",
  );
}
let binary;
try {
  binary = path.join(shippedAssetPath(`cli/${arch}`, 'breaker', `the breaker CLI for ${arch}`, 'build:cli'), 'breaker');
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
const run = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
if (run.error) fail(`could not run ${binary}: ${run.error.message}`);
if (run.signal) process.kill(process.pid, run.signal);
process.exit(run.status ?? 1);
