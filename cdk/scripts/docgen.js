#!/usr/bin/env node
// Writes API.md (the API reference, jsii-docgen) from the built assembly `.jsii`.
// jsii-docgen's CLI looks for the dependencies' assemblies under this package's own folder, but npm
// workspaces hoist aws-cdk-lib and constructs to the repository's node_modules: so the assemblies
// are gathered by symlink into a temporary folder and documented from there.
// Usage: node scripts/docgen.js [output, default API.md]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Documentation, Language } = require('jsii-docgen');

const root = path.join(__dirname, '..');
const output = path.resolve(root, process.argv[2] || 'API.md');

async function main() {
  if (!fs.existsSync(path.join(root, '.jsii'))) {
    throw new Error("no .jsii: build first ('npm run build -w cdk')");
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breaker-docgen-'));
  try {
    // Only the assembly of this package (its .jsii), not its assets or node_modules.
    fs.mkdirSync(path.join(dir, pkg.name));
    fs.symlinkSync(path.join(root, '.jsii'), path.join(dir, pkg.name, '.jsii'));
    for (const dep of Object.keys(pkg.peerDependencies)) {
      const depDir = path.dirname(require.resolve(`${dep}/package.json`, { paths: [root] }));
      fs.symlinkSync(depDir, path.join(dir, dep));
    }
    const docs = await Documentation.forAssembly(pkg.name, dir);
    const markdown = await docs.toMarkdown({ language: Language.TYPESCRIPT, readme: false });
    fs.writeFileSync(output, markdown.render());
    await docs.cleanup();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.error(`sqs-circuit-breaker docgen: wrote ${path.relative(process.cwd(), output)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
