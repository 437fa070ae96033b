import * as fs from 'fs';
import * as path from 'path';

/** The package's root folder (holding `lib/` and `assets/`). */
const PACKAGE_ROOT = path.join(__dirname, '..');

/**
 * Whether this package is the construct's source folder inside the repository (its Lambda
 * binaries are built there) rather than an installed copy (they ship inside the tarball).
 */
function inRepository(): boolean {
  return fs.existsSync(path.join(PACKAGE_ROOT, '..', 'Cargo.toml'));
}

/**
 * The asset folder `relative` (under the package's `assets/`), checked to hold `file`.
 * `buildScript` is the root npm script that builds it in the repository.
 *
 * @throws Error when the file is missing, saying what to do: build it (in the repository) or
 * reinstall (an installed package that was packed without it).
 */
export function shippedAssetPath(relative: string, file: string, what: string, buildScript = 'build:lambdas'): string {
  const dir = path.join(PACKAGE_ROOT, 'assets', relative);
  const target = path.join(dir, file);
  if (fs.existsSync(target)) return dir;
  const fix = inRepository()
    ? `run 'npm run ${buildScript}' at the repository root`
    : 'this copy of sqs-circuit-breaker was packed without its prebuilt binaries; reinstall a ' +
      'published version (npm install sqs-circuit-breaker) or report it to the maintainers';
  throw new Error(`sqs-circuit-breaker: ${what} is missing at ${target}; ${fix}`);
}

/**
 * Folder holding the prebuilt arm64 `bootstrap` binary of the breaker's Rust Lambdas, shipped
 * inside this package (built by `npm run build:lambdas`).
 *
 * @throws Error when the binary is missing, saying how to get it.
 */
export function bootstrapAssetPath(): string {
  return shippedAssetPath('bootstrap', 'bootstrap', 'the Lambda binary');
}

/** The telemetry extension's executable inside its layer (`/opt/extensions/<name>` at run time). */
export const TELEMETRY_EXTENSION_FILE = 'extensions/sqs-circuit-breaker-telemetry';

/**
 * Folder holding the prebuilt telemetry extension for `architecture` (`arm64` or `x86_64`, a
 * `lambda.Architecture` name) laid out as a layer (`extensions/sqs-circuit-breaker-telemetry`),
 * shipped inside this package (built by `npm run build:lambdas`).
 *
 * @throws Error when the extension is missing, saying how to get it.
 */
export function extensionAssetPath(architecture: string): string {
  return shippedAssetPath(
    `extension/${architecture}`,
    TELEMETRY_EXTENSION_FILE,
    `the telemetry extension (${architecture})`,
  );
}
