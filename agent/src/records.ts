/**
 * What the agent ships. Events keep their stored canonical body byte for byte (the `event`
 * member of a JSON line is that text, inlined), so a receiver can re-hash it: RFC 8785
 * canonical JSON re-encodes to the same bytes after parsing.
 */

export interface EventRecord {
  seq: number;
  /** Hex chain hash. */
  hash: string;
  /** The canonical JSON that was hashed (holds seq and prev). */
  body: string;
}

export interface CheckpointRecord {
  size: number;
  /** Base64 root. */
  root: string;
  /** The gateway's signed note, as stored in its log. */
  note: string;
  /** The note verifier key the agent checked it with. */
  verifierKey: string;
  /** The agent's cosignature line (`— name base64`), when it witnesses. */
  cosignature?: string;
  /** The agent's witness verifier key, when it witnesses. */
  witnessKey?: string;
}

export interface AlertRecord {
  time: string;
  /** agent.gap | agent.bad_hash | agent.rollback | agent.bad_checkpoint | agent.key_changed | agent.conflict … */
  code: string;
  /** First sequence number not proven good, when known. */
  seq?: number;
  message: string;
}

/** A slice of the verified log handed to every sink: events (seq ascending) and the checkpoints they complete. */
export interface SinkBatch {
  gatewayId: string;
  /** The gateway's note verifier key (pinned by the agent). */
  verifierKey: string;
  events: EventRecord[];
  checkpoints: CheckpointRecord[];
}

export function eventLine(gatewayId: string, e: EventRecord): string {
  return `{"type":"event","gateway_id":${JSON.stringify(gatewayId)},"seq":${e.seq},"hash":"${e.hash}","event":${e.body}}`;
}

export function checkpointLine(gatewayId: string, c: CheckpointRecord): string {
  return JSON.stringify({
    type: 'checkpoint',
    gateway_id: gatewayId,
    size: c.size,
    root: c.root,
    note: c.note,
    verifier_key: c.verifierKey,
    ...(c.cosignature ? { cosignature: c.cosignature, witness_key: c.witnessKey } : {}),
  });
}

export function alertLine(gatewayId: string, a: AlertRecord): string {
  return JSON.stringify({ type: 'alert', gateway_id: gatewayId, ...a });
}

/** Events then checkpoints, one JSON line each (the file and HTTP sinks' format). */
export function batchLines(b: SinkBatch): string[] {
  return [...b.events.map((e) => eventLine(b.gatewayId, e)), ...b.checkpoints.map((c) => checkpointLine(b.gatewayId, c))];
}
