import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SqsCircuitBreaker } from 'sqs-circuit-breaker';
import { breakerStack, consumerStack } from './fixture';

const CFN_LINT = path.resolve(__dirname, '..', '..', '.venv', 'bin', 'cfn-lint');

/** A stack with a breaker carrying every optional resource (topic rules and dashboard included). */
function fullStack() {
  const f = consumerStack();
  const topic = new sns.Topic(f.stack, 'Alerts', { enforceSSL: true });
  const breaker = new SqsCircuitBreaker(f.stack, 'OrdersBreaker', {
    consumer: f.consumer, queue: f.queue, eventSourceMappingId: f.source.eventSourceMappingId, notificationTopic: topic, dashboard: {},
  });
  return { ...f, breaker };
}

describe('compliance', () => {
  test('cdk-nag AwsSolutions finds nothing unacknowledged in the breaker', () => {
    const { breaker } = fullStack();
    const report = new AwsSolutionsChecks().validateScope(breaker);
    expect(report.violations.map((v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
  });

  test('cdk-nag is live: it flags the fixture consumer outside the breaker, which nothing acknowledges', () => {
    // The fixture's own consumer uses the managed basic-execution policy: nag must see it.
    const { stack } = breakerStack();
    const all = new AwsSolutionsChecks().validateScope(stack).violations.map((v) => v.ruleName);
    expect(all.some((r) => r.startsWith('AwsSolutions-IAM4'))).toBe(true);
  });

  test('cfn-lint finds no error or warning in the synthesized template', () => {
    const { stack } = fullStack();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breaker-cfnlint-'));
    const file = path.join(dir, 'template.json');
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    fs.writeFileSync(file, JSON.stringify(template.toJSON()));
    let out = '';
    try {
      // W3005: DependsOn that CDK adds although a Ref/GetAtt already implies it (CDK's own doing).
      out = execFileSync(CFN_LINT, ['--format', 'parseable', '--ignore-checks', 'W3005', '--', file], { encoding: 'utf8' });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(out.trim()).toBe('');
  });
});
