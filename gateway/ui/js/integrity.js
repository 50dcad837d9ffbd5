// Audit integrity: the latest signed checkpoint, a fresh verification of the whole chain
// (run by the gateway in a worker, at most every 30 s), the verifier key, and how far the
// shipping agent got when one keeps its state in this gateway's data_dir.
import { get } from './api.js';
import { facts, h, heading, when } from './dom.js';

export function render(main, ctx) {
  const status = h('p', { role: 'status' }, 'Verifying the audit log…');
  main.append(heading('Audit integrity'), status);
  get('/ui/api/integrity').then(
    (r) => {
      status.remove();
      const v = r.verification;
      main.append(
        h(
          'section',
          { 'aria-labelledby': 'verify-h' },
          h('h2#verify-h', {}, 'Verification'),
          h(
            'p.verdict',
            { 'data-ok': String(v.ok) },
            v.ok
              ? 'Verified: the hash chain, the Merkle roots and every checkpoint signature hold.'
              : `FAILED${v.firstBadSeq ? ` at sequence ${v.firstBadSeq}` : ''}: ${v.reason ?? ''}`,
          ),
          facts([
            ['Events verified', v.size],
            ['Checkpoints checked', v.checkpoints],
            ['Root', h('code', {}, v.root)],
            ['Checked at', when(v.checkedAt)],
          ]),
        ),
        h(
          'section',
          { 'aria-labelledby': 'cp-h' },
          h('h2#cp-h', {}, 'Latest checkpoint'),
          r.checkpoint ? h('pre.note#checkpoint', {}, r.checkpoint) : h('p', {}, 'No checkpoint yet.'),
        ),
        h(
          'section',
          { 'aria-labelledby': 'key-h' },
          h('h2#key-h', {}, 'Verifier key'),
          h('pre.note#verifier-key', {}, r.verifier_key),
          h('p.note', {}, 'Keep a copy outside the gateway: ', h('code', {}, 'gatehouse audit verify --checkpoint'), ' against it detects truncation and rollback.'),
        ),
        h(
          'section',
          { 'aria-labelledby': 'agent-h' },
          h('h2#agent-h', {}, 'Shipping'),
          r.agent
            ? h(
                'div.scroll',
                {},
                h(
                  'table#agent',
                  {},
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      ['Sink', 'Shipped through seq', 'Checkpoint size', 'Updated'].map((c) => h('th', { scope: 'col' }, c)),
                    ),
                  ),
                  h(
                    'tbody',
                    {},
                    r.agent.map((a) =>
                      h('tr', {}, h('td', {}, a.sink), h('td', {}, a.shipped < 0 ? 'unreadable' : a.shipped), h('td', {}, a.checkpoint ?? '—'), h('td', {}, when(a.updated))),
                    ),
                  ),
                ),
              )
            : h('p#agent', {}, 'No agent: no shipping state on this host.'),
        ),
      );
    },
    (e) => {
      status.textContent = '';
      ctx.flash(`Cannot load the integrity report: ${e.message}`);
    },
  );
}
