#!/usr/bin/env node
// `npx sqs-circuit-breaker <command>`: runs `breaker`, the operator CLI, from the prebuilt binary
// this package ships for the machine's architecture (assets/cli/<arch>/breaker, Linux x86_64 and
// arm64; built by 'npm run build:cli' in the repository). Arguments, standard streams and the exit
// status pass through unchanged.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

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
const packageRoot = path.join(__dirname, '..');
const binary = path.join(packageRoot, 'assets', 'cli', arch, 'breaker');
if (!fs.existsSync(binary)) {
  const inRepository = fs.existsSync(path.join(packageRoot, '..', 'Cargo.toml'));
  fail(
    `the breaker CLI for ${arch} is missing at ${binary}; ` +
      (inRepository
        ? "run 'npm run build:cli' at the repository root"
        : 'this copy of sqs-circuit-breaker was packed without its prebuilt binaries; reinstall a ' +
          'published version (npm install sqs-circuit-breaker) or report it to the maintainers'),
  );
}
const run = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
if (run.error) fail(`could not run ${binary}: ${run.error.message}`);
if (run.signal) process.kill(process.pid, run.signal);
process.exit(run.status ?? 1);
