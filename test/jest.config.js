/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  testTimeout: 60000,
  // every core: jest's default leaves one free (a single worker on a 2-core machine), and the
  // suites are CPU-bound synths (19 suites: 134 s with one worker, 65 s with two, here)
  maxWorkers: '100%',
};
