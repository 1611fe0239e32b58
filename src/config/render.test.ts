import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIG_SETTINGS, renderConfigTable, settingHelp } from './index.ts';

test('renderConfigTable has a header and one row per setting naming its key, flag and variables', () => {
  const lines = renderConfigTable().split('\n');
  assert.equal(lines[0], '| Setting | Flag | Environment | Default | Allowed / description |');
  assert.equal(lines[1], '| --- | --- | --- | --- | --- |');
  assert.equal(lines.length, CONFIG_SETTINGS.length + 2);
  for (const s of CONFIG_SETTINGS) {
    const row = lines.find((line) => line.startsWith(`| \`${s.key}\` |`));
    assert.ok(row, `no row for ${s.key}`);
    assert.ok(row.includes(`\`${s.flag} <`), `${s.key}: flag missing`);
    for (const name of s.env) assert.ok(row.includes(`\`${name}\``), `${s.key}: ${name} missing`);
    assert.ok(row.includes(s.kind.expected), `${s.key}: allowed values missing`);
    assert.ok(row.includes(s.description), `${s.key}: description missing`);
  }
});

test('renderConfigTable shows defaults as they would be typed', () => {
  const table = renderConfigTable();
  assert.match(table, /\| `port` \| `--port <n>` \| `MAXINE_PORT`, `PORT` \| `8080` \| an integer from 1 to 65535\. /);
  assert.match(table, /\| `trustProxy` \|.*\| `false` \|/);
  assert.match(table, /\| `configFile` \|.*\| `none` \|/);
  assert.match(table, /production uses 0\.0\.0\.0/);
});

test('settingHelp lists the variables, the file key, the default and the allowed values', () => {
  const port = CONFIG_SETTINGS.find((s) => s.key === 'port');
  assert.ok(port);
  assert.equal(
    settingHelp(port),
    'TCP port to listen on (PORT is the original Maxine name). [env: MAXINE_PORT, PORT] [file: port] [default: 8080] [allowed: an integer from 1 to 65535]',
  );
});
