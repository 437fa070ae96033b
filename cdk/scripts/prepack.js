#!/usr/bin/env node
// Refuses to pack the construct without what it ships: the compiled library and the prebuilt
// Lambda binaries (npm would otherwise pack silently without them, and every user's synth would
// fail). Usage: node scripts/prepack.js [package folder, default: this package]
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(process.argv[2] || path.join(__dirname, '..'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// Every `files` entry without a glob is a file the package must contain.
const required = [pkg.main, pkg.types, ...(pkg.files || []).filter((f) => !/[*?[\]{}]/.test(f))];
const missing = required.filter((f) => !fs.existsSync(path.join(root, f)));
if (missing.length > 0) {
  console.error(
    `sqs-circuit-breaker prepack: refusing to pack ${root}: missing ${missing.join(', ')}.\n`
      + "Build first, at the repository root: 'npm run build' (the Lambda binaries and the library) " +
        "and 'npm run build:cli' (the operator CLI's binaries).",
  );
  process.exit(1);
}
console.error(`sqs-circuit-breaker prepack: ${required.length} required files present`);
