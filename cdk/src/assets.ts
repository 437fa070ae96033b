import * as fs from 'fs';
import * as path from 'path';

/**
 * Folder holding the prebuilt arm64 `bootstrap` binary of the breaker's Rust Lambdas, shipped
 * inside this package (built by `npm run build:lambdas`).
 *
 * @throws Error when the binary has not been built, naming the command that builds it.
 */
export function bootstrapAssetPath(): string {
  const dir = path.join(__dirname, '..', 'assets', 'bootstrap');
  if (!fs.existsSync(path.join(dir, 'bootstrap'))) {
    throw new Error(
      `sqs-circuit-breaker: the Lambda binary is missing at ${dir}/bootstrap; run 'npm run build:lambdas' at the repository root`,
    );
  }
  return dir;
}
