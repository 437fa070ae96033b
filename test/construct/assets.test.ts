import * as fs from 'fs';
import * as path from 'path';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';

test('the prebuilt arm64 bootstrap ships inside the construct package', () => {
  const dir = SqsCircuitBreaker.bootstrapAssetPath();
  const binary = fs.readFileSync(path.join(dir, 'bootstrap'));
  // ELF magic, 64-bit, and e_machine 0xB7 = AArch64
  expect(binary.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  expect(binary[4]).toBe(2);
  expect(binary.readUInt16LE(18)).toBe(0xb7);
});
