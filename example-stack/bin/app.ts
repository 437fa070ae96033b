#!/usr/bin/env node
import * as cdk from 'aws-cdk-lib';
import { OrdersStack } from '../lib/orders-stack';

const app = new cdk.App();
new OrdersStack(app, app.node.tryGetContext('stackName') ?? 'SqsCircuitBreakerExample', {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
