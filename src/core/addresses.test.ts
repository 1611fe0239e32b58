import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isForbiddenHost, isLinkLocalOrMetadataIp } from './addresses.ts';

test('link-local and metadata addresses in every spelling are recognised', () => {
  for (const address of [
    '169.254.169.254',
    '169.254.0.1',
    'fd00:ec2::254',
    '[fd00:ec2::254]',
    'FD00:0EC2:0000:0000:0000:0000:0000:0254',
    'fe80::1',
    '[fe80::abcd:1]',
    'febf::1',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
  ]) {
    assert.equal(isLinkLocalOrMetadataIp(address), true, address);
  }
});

test('ordinary addresses are not', () => {
  for (const address of ['127.0.0.1', '10.0.0.1', '169.253.1.1', '170.254.169.254', '::1', 'fd00:ec2::253', 'fec0::1', '::ffff:10.0.0.1', 'example.com']) {
    assert.equal(isLinkLocalOrMetadataIp(address), false, address);
  }
});

test('metadata host names are forbidden hosts, case and trailing dot ignored', () => {
  assert.equal(isForbiddenHost('metadata.google.internal'), true);
  assert.equal(isForbiddenHost('METADATA.Google.Internal.'), true);
  assert.equal(isForbiddenHost('169.254.169.254'), true);
  assert.equal(isForbiddenHost('metadata.example.com'), false);
  assert.equal(isForbiddenHost('api.internal'), false);
});
