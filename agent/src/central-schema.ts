/**
 * The central store's schema, in schema `gatehouse`, applied by versioned migrations (table
 * gatehouse.schema_migrations) under an advisory lock so two agents starting together do
 * not race. Every table is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE, for
 * every role that does not disable triggers (grants are the other half: docs/agent.md).
 */
import type pg from 'pg';

const APPEND_ONLY = (table: string) => `
CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON gatehouse.${table} FOR EACH ROW EXECUTE FUNCTION gatehouse.refuse_change();
CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON gatehouse.${table} FOR EACH STATEMENT EXECUTE FUNCTION gatehouse.refuse_change();`;

export const MIGRATIONS: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
CREATE FUNCTION gatehouse.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'gatehouse.%: % refused, the audit trail is append-only', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
-- The key a gateway's checkpoints must verify with: recorded with its first checkpoint (or registered beforehand by an operator).
CREATE TABLE gatehouse.gateways (
  gateway_id    text PRIMARY KEY,
  verifier_key  text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE gatehouse.events (
  gateway_id text NOT NULL REFERENCES gatehouse.gateways,
  seq        bigint NOT NULL CHECK (seq > 0),
  hash       bytea NOT NULL CHECK (length(hash) = 32),
  body       text NOT NULL,
  shipped_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (gateway_id, seq)
);
CREATE TABLE gatehouse.checkpoints (
  id          bigserial PRIMARY KEY,
  gateway_id  text NOT NULL REFERENCES gatehouse.gateways,
  size        bigint NOT NULL CHECK (size >= 0),
  root        bytea NOT NULL,
  note        text NOT NULL,
  cosignature text,
  witness_key text,
  shipped_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (gateway_id, note)
);
CREATE INDEX checkpoints_by_size ON gatehouse.checkpoints (gateway_id, size, id);
CREATE TABLE gatehouse.alerts (
  id         bigserial PRIMARY KEY,
  gateway_id text NOT NULL,
  time       timestamptz NOT NULL,
  code       text NOT NULL,
  seq        bigint,
  message    text NOT NULL,
  sink       text NOT NULL,
  shipped_at timestamptz NOT NULL DEFAULT now()
);
${['gateways', 'events', 'checkpoints', 'alerts'].map(APPEND_ONLY).join('\n')}
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Applies what is missing; refuses a store newer than this build (it would write into a schema it does not know). */
export async function migrate(client: pg.ClientBase): Promise<number> {
  // Up to date: no DDL at all, so an agent role with only SELECT and INSERT starts fine.
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass('gatehouse.schema_migrations')::text AS t");
  if (exists.rows[0].t) {
    const cur = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM gatehouse.schema_migrations');
    if (cur.rows[0].v === SCHEMA_VERSION) return SCHEMA_VERSION;
  }
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('gatehouse.schema_migrations'))");
    await client.query('CREATE SCHEMA IF NOT EXISTS gatehouse');
    await client.query('CREATE TABLE IF NOT EXISTS gatehouse.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM gatehouse.schema_migrations');
    const have = rows[0].v ?? 0;
    if (have > SCHEMA_VERSION) throw new Error(`central store schema is version ${have}, this agent knows up to ${SCHEMA_VERSION}: upgrade the agent`);
    for (const m of MIGRATIONS) {
      if (m.version <= have) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO gatehouse.schema_migrations (version) VALUES ($1)', [m.version]);
    }
    await client.query('COMMIT');
    return SCHEMA_VERSION;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
