/**
 * API.md (the API reference jsii-docgen writes from the built `.jsii`) matches the built library:
 * regenerate it with `npm run docgen -w cdk` after changing the public API.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const CDK = path.resolve(__dirname, '..', '..', 'cdk');

test('cdk/API.md is current with the built assembly', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breaker-api-'));
  try {
    const fresh = path.join(dir, 'API.md');
    execFileSync(process.execPath, [path.join(CDK, 'scripts', 'docgen.js'), fresh], { stdio: 'pipe' });
    expect(fs.readFileSync(path.join(CDK, 'API.md'), 'utf8')).toEqual(fs.readFileSync(fresh, 'utf8'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
