/** The admin server of a real gateway: health, metrics, and the role-checked JSON API. */
import t from 'tap';
import { startTestGateway, TOKENS } from '../../lib/gateway.js';

const get = (url: string, token?: string) => fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});

t.test('admin API', async (t) => {
  const tg = await startTestGateway({ yaml: 'connectors: []\n' });
  t.teardown(() => tg.stop());
  const base = tg.adminUrl;

  const health = await get(`${base}/healthz`);
  t.equal(health.status, 200);
  t.match(await health.json(), { status: 'ok', audit: { status: 'ok', durability: 'strict' } });

  const metrics = await (await get(`${base}/metrics`)).text();
  t.match(metrics, /gatehouse_audit_failed 0/);
  t.match(metrics, /gatehouse_process_/);

  // Put two events in the log through the same sink connectors use.
  const base_event = { connector: 'x', protocol: 'postgres', identity: { subject: 'svc:a', issuer: 'static', groups: [] } };
  await tg.gw.audit.append({ ...base_event, time: new Date().toISOString(), kind: 'session.start', session: '00000000-0000-4000-8000-000000000001' });
  await tg.gw.audit.append({
    ...base_event,
    time: new Date().toISOString(),
    kind: 'unit',
    session: '00000000-0000-4000-8000-000000000001',
    unit: { type: 'statement', text: 'select 1' },
    decision: { action: 'allow' },
  });
  // The writer reports its commits once a second: at least these two events, and their fsyncs.
  let writer = '';
  for (let i = 0; i < 50 && !/gatehouse_audit_events_total [1-9]/.test(writer); i++) {
    await new Promise((r) => setTimeout(r, 100));
    writer = await (await get(`${base}/metrics`)).text();
  }
  t.match(writer, /gatehouse_audit_events_total ([2-9]|\d\d)/, 'committed events counted');
  t.match(writer, /gatehouse_audit_commits_total [1-9]/);
  t.match(writer, /gatehouse_audit_syncs_total [1-9]/, 'strict: the commits were synced');
  t.match(writer, /gatehouse_audit_sync_seconds_count [1-9]/, 'each sync latency observed');

  t.equal((await get(`${base}/api/v1/events`)).status, 401, 'no token → 401');
  const wrong = await get(`${base}/api/v1/events`, 'not-a-token-0123456789');
  t.equal(wrong.status, 401, 'bad token → 401');
  t.equal(wrong.headers.get('content-type'), 'application/problem+json');
  t.match(await wrong.json(), { type: 'urn:gatehouse:problem:unauthorized', title: 'Unauthorized', status: 401, detail: String }, 'the problem scheme of the connectors');
  const noRole = await get(`${base}/api/v1/events`, TOKENS.billing);
  t.equal(noRole.status, 403, 'a caller without an admin role → 403');
  t.match(await noRole.json(), { type: 'urn:gatehouse:problem:forbidden', detail: /requires role auditor/ });

  const ev = await get(`${base}/api/v1/events?kind=unit`, TOKENS.auditor);
  t.equal(ev.status, 200);
  const { events } = (await ev.json()) as { events: { seq: number; kind: string; unit: { text: string } }[] };
  t.equal(events.length, 1);
  t.equal(events[0].unit.text, 'select 1');

  const page = (await (await get(`${base}/api/v1/events?after=${events[0].seq}`, TOKENS.admin)).json()) as { events: unknown[] };
  t.same(page.events, [], 'after= pages past the last event');
  t.equal((await get(`${base}/api/v1/events?limit=0`, TOKENS.auditor)).status, 400);
  t.equal((await get(`${base}/api/v1/events?since=yesterday`, TOKENS.auditor)).status, 400);

  const sessions = (await (await get(`${base}/api/v1/sessions`, TOKENS.auditor)).json()) as { sessions: { session: string }[] };
  t.same(
    sessions.sessions.map((s) => s.session),
    ['00000000-0000-4000-8000-000000000001'],
  );
  const one = await get(`${base}/api/v1/sessions/00000000-0000-4000-8000-000000000001`, TOKENS.auditor);
  t.equal(one.status, 200);
  t.equal(((await one.json()) as { events: unknown[] }).events.length, 2);
  t.equal((await get(`${base}/api/v1/sessions/00000000-0000-4000-8000-00000000dead`, TOKENS.auditor)).status, 404);

  const cp = (await (await get(`${base}/api/v1/checkpoint`, TOKENS.auditor)).json()) as { checkpoint: string; verifier_key: string };
  t.match(cp.checkpoint, /^gatehouse\n\d+\n[A-Za-z0-9+/=]+\n/, 'a signed note with origin, size and root');
  t.equal(cp.verifier_key, tg.gw.verifierKey);
});
