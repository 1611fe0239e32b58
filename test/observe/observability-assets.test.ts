import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { startTestMaxine, type TestMaxine } from '../helpers/maxine.ts';
import { hasMetric, parseScrape, type Scrape } from '../helpers/prometheus.ts';

/**
 * The example rules and dashboard in deploy/observability must only name
 * metrics Maxine exports: a renamed metric would otherwise leave an alert
 * that can never fire.
 */

const RULES_FILE = new URL('../../deploy/observability/prometheus-rules.yaml', import.meta.url);
const DASHBOARD_FILE = new URL('../../deploy/observability/grafana-dashboard.json', import.meta.url);

/** maxine_* names, but not the inside of recording rule names (`job:maxine_x:rate5m`). */
const METRIC = /(?<![\w:])maxine_\w+(?![\w:])/g;
const RECORDED = /\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b/g;

/** A histogram's series name its family without these. */
function family(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}

function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(METRIC)].map(([name]) => family(name)));
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rulesText = readFileSync(RULES_FILE, 'utf8');
const dashboardText = readFileSync(DASHBOARD_FILE, 'utf8');

let maxine: TestMaxine;
let scrape: Scrape;

before(async () => {
  maxine = await startTestMaxine();
  // Some traffic, so that the labelled families have series too.
  await maxine.call('POST', '/api/maxine/serviceops/register', { hostName: '127.0.0.1', nodeName: 'n-1', serviceName: 'orders', port: 8080 });
  await maxine.call('GET', '/api/maxine/serviceops/discover?serviceName=orders&format=json');
  await maxine.call('POST', '/api/maxine/serviceops/heartbeat', { serviceName: 'orders', nodeName: 'n-1' });
  const res = await maxine.call('GET', '/metrics');
  assert.equal(res.status, 200);
  scrape = parseScrape(res.text);
});
after(() => maxine.stop());

test('the rules file is well formed: named groups, each rule recording or alerting with an expression', () => {
  const { groups } = parse(rulesText) as { groups: { name: string; rules: Rule[] }[] };
  assert.ok(groups.length > 0);
  const recorded = new Set<string>();
  for (const group of groups) {
    assert.equal(typeof group.name, 'string');
    for (const rule of group.rules) {
      assert.ok((rule.record === undefined) !== (rule.alert === undefined), JSON.stringify(rule));
      assert.equal(typeof rule.expr, 'string');
      if (rule.record !== undefined) recorded.add(rule.record);
      else assert.equal(typeof rule.annotations?.summary, 'string', `${rule.alert} has no summary`);
    }
  }
  // Alerts use recorded series only where those are recorded here.
  for (const rule of groups.flatMap((g) => g.rules)) {
    for (const [name] of rule.expr.matchAll(RECORDED)) assert.ok(recorded.has(name), `${name} is used but not recorded`);
  }
  const alerts = groups.flatMap((g) => g.rules).flatMap((r) => (r.alert === undefined ? [] : [r.alert]));
  for (const expected of ['MaxineNoLeader', 'MaxineStoreUnreachable', 'MaxineEligibleInstancesLow', 'MaxineDiscoverErrorRatioHigh']) {
    assert.ok(alerts.includes(expected), `${expected} missing`);
  }
});

test('the dashboard is well formed: every panel has an id and its queries have expressions', () => {
  const dashboard = JSON.parse(dashboardText) as { uid: string; panels: { id: number; type: string; targets?: { expr: string }[] }[] };
  assert.equal(typeof dashboard.uid, 'string');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids repeat');
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    assert.ok((panel.targets ?? []).length > 0, `panel ${panel.id} has no queries`);
    for (const target of panel.targets!) assert.ok(target.expr.length > 0);
  }
});

test('every maxine_* metric the rules and the dashboard name is exported', () => {
  for (const [file, text] of [
    ['prometheus-rules.yaml', rulesText],
    ['grafana-dashboard.json', dashboardText],
  ] as const) {
    const names = metricNames(text);
    assert.ok(names.size >= 5, `${file} names only ${names.size} metrics`);
    const missing = [...names].filter((name) => !hasMetric(scrape, name));
    assert.deepEqual(missing, [], `${file} names metrics /metrics does not have`);
  }
});
