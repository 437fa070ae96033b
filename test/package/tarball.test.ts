/**
 * The construct as users get it: `npm pack` of `cdk/`, installed into a fresh app in a temporary
 * folder (outside the repository, no Rust toolchain on PATH), the README's usage snippet
 * type-checked and synthesized from the installed package; the prepack guard; the missing-binary
 * error an npm user would see.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
const CDK = path.join(REPO, 'cdk');
const TSC = require.resolve('typescript/bin/tsc');
const cdkPackage = JSON.parse(fs.readFileSync(path.join(CDK, 'package.json'), 'utf8'));

/** PATH without cargo/rustc: only the folders of node and the system's basic tools. */
function pathWithoutRust(): string {
  const keep = [path.dirname(process.execPath), '/usr/bin', '/bin'];
  for (const dir of keep) {
    for (const tool of ['cargo', 'rustc', 'cargo-lambda']) {
      if (fs.existsSync(path.join(dir, tool))) throw new Error(`${tool} is in ${dir}: cannot test without Rust`);
    }
  }
  return keep.join(path.delimiter);
}

/** The README's usage snippet (the first ts block under "## Use the construct"). */
function readmeSnippet(): string {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.split('## Use the construct')[1];
  const match = /```ts\n([\s\S]*?)```/.exec(section ?? '');
  if (!match) throw new Error('README.md: no ```ts block under "## Use the construct"');
  return match[1];
}

let work: string;
let tarball: string;
let app: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'breaker-package-'));
  const out = execFileSync('npm', ['pack', '--pack-destination', work, '--json'], { cwd: CDK, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  tarball = path.join(work, JSON.parse(out)[0].filename);
  app = path.join(work, 'app');
  fs.mkdirSync(app);
  const peers = cdkPackage.devDependencies as Record<string, string>;
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'fresh-app',
    private: true,
    dependencies: {
      'sqs-circuit-breaker': `file:${tarball}`,
      'aws-cdk-lib': peers['aws-cdk-lib'],
      'constructs': peers.constructs,
    },
  }, null, 2));
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, stdio: 'pipe' });
}, 300_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the library and the prebuilt binary, nothing from the repository', () => {
  const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  expect(listing).toEqual(expect.arrayContaining([
    'package/package.json', 'package/.jsii', 'package/lib/index.js', 'package/lib/index.d.ts', 'package/assets/bootstrap/bootstrap',
    // Issue 15: the telemetry extension's layer content, for both consumer architectures.
    'package/assets/extension/arm64/extensions/sqs-circuit-breaker-telemetry',
    'package/assets/extension/x86_64/extensions/sqs-circuit-breaker-telemetry',
  ]));
  expect(listing.filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f))).toEqual([]);
  expect(listing.filter((f) => f.startsWith('package/src/') || f.includes('node_modules'))).toEqual([]);
});

test("the README's snippet type-checks and synthesizes from the installed package with no Rust on PATH", () => {
  const source = [
    "import * as cdk from 'aws-cdk-lib';",
    "import * as lambda from 'aws-cdk-lib/aws-lambda';",
    "import * as sqs from 'aws-cdk-lib/aws-sqs';",
    readmeSnippet().split('\n').filter((l) => l.startsWith('import ')).join('\n'),
    'class OrdersStack extends cdk.Stack {',
    '  constructor(scope: cdk.App, id: string) {',
    '    super(scope, id);',
    "    const queue = new sqs.Queue(this, 'Orders', { visibilityTimeout: cdk.Duration.seconds(60) });",
    "    const fn = new lambda.Function(this, 'Consumer', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})') });",
    '    const esm = fn.addEventSourceMapping(\'Orders\', { eventSourceArn: queue.queueArn, batchSize: 10 });',
    '    queue.grantConsumeMessages(fn);',
    readmeSnippet().split('\n').filter((l) => !l.startsWith('import ')).map((l) => `    ${l}`).join('\n'),
    '  }',
    '}',
    'const cdkApp = new cdk.App();',
    "const stack = new OrdersStack(cdkApp, 'Orders');",
    'const template = cdkApp.synth().getStackByName(stack.stackName).template;',
    'console.log(JSON.stringify(Object.values(template.Resources).map((r: any) => r.Type)));',
  ].join('\n');
  fs.writeFileSync(path.join(app, 'app.ts'), source);
  const tsc = spawnSync(process.execPath, [TSC, '--strict', '--target', 'ES2022', '--module', 'commonjs',
    '--esModuleInterop', '--skipLibCheck', 'app.ts'], { cwd: app, encoding: 'utf8' });
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.status).toBe(0);
  const run = spawnSync(process.execPath, ['app.js'], {
    cwd: app, encoding: 'utf8', env: { PATH: pathWithoutRust(), HOME: work, CDK_DISABLE_CLI_TELEMETRY: 'true' },
  });
  expect(run.stderr).toBe('');
  const types: string[] = JSON.parse(run.stdout.trim().split('\n').pop()!);
  expect(types).toEqual(expect.arrayContaining([
    'AWS::StepFunctions::StateMachine', 'AWS::CloudWatch::Alarm', 'AWS::Events::Rule', 'AWS::Lambda::Function',
    // The snippet's consumer is a function of the app: the construct adds the telemetry layer.
    'AWS::Lambda::LayerVersion',
  ]));
}, 120_000);

test('an installed copy without its binary says to reinstall, not to run a repository command', () => {
  const copy = path.join(work, 'stripped');
  fs.cpSync(path.join(app, 'node_modules', 'sqs-circuit-breaker'), copy, { recursive: true });
  fs.rmSync(path.join(copy, 'assets', 'bootstrap', 'bootstrap'));
  const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(copy, 'lib', 'assets.js'))}).bootstrapAssetPath()`], { encoding: 'utf8' });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toContain('packed without its prebuilt binaries');
  expect(run.stderr).toContain('npm install sqs-circuit-breaker');
  expect(run.stderr).not.toContain('build:lambdas');
});

test('prepack refuses to pack a package without its binary, naming the missing file', () => {
  const copy = path.join(work, 'unbuilt');
  fs.mkdirSync(copy);
  fs.copyFileSync(path.join(CDK, 'package.json'), path.join(copy, 'package.json'));
  fs.cpSync(path.join(CDK, 'lib'), path.join(copy, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(CDK, '.jsii'), path.join(copy, '.jsii'));
  const run = spawnSync(process.execPath, [path.join(CDK, 'scripts', 'prepack.js'), copy], { encoding: 'utf8' });
  expect(run.status).toBe(1);
  expect(run.stderr).toContain('missing assets/bootstrap/bootstrap');
  expect(run.stderr).toContain("'npm run build'");
});
