/** Audit logs written directly, for the offline tools (the CLI reads them without a gateway). */
import { openAuditLog } from '@gatehouse/audit';

/** Writes one allowed `unit` event per statement text into the log in `dataDir` (strict), then closes it. */
export async function writeStatements(dataDir: string, origin: string, session: string, texts: string[]): Promise<void> {
  const log = await openAuditLog({ dataDir, durability: 'strict', windowMs: 5, checkpointIntervalSec: 60, origin });
  try {
    for (const text of texts) {
      await log.append({
        time: new Date().toISOString(),
        kind: 'unit',
        connector: 'db',
        protocol: 'postgres',
        session,
        identity: null,
        unit: { type: 'statement', text },
        decision: { action: 'allow' },
      });
    }
  } finally {
    await log.close();
  }
}
