import { Template } from 'aws-cdk-lib/assertions';
import { breakerStack } from './fixture';

// Asset hashes change with every build of the Rust binary (and of CDK's own assets): strip them.
expect.addSnapshotSerializer({
  test: (v) => typeof v === 'string' && /[0-9a-f]{64}/.test(v),
  print: (v) => JSON.stringify((v as string).replace(/[0-9a-f]{64}/g, '<asset-hash>')),
});

test('the synthesized template matches the snapshot (asset hashes removed)', () => {
  const { stack } = breakerStack({ circuitName: 'orders' });
  expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
});
