/** The configuration of a `type: http` connector, as validated by ./schema.ts. */
import type { ConnectorConfig } from '@gatehouse/core';

export interface HttpCredential {
  /** bearer (token) | basic (username, password) | header (name, value) | query (name, value) */
  type: 'bearer' | 'basic' | 'header' | 'query';
  token?: string;
  username?: string;
  password?: string;
  name?: string;
  value?: string;
}

export interface HttpUpstream {
  /** Scheme, host, port and base path; no query, fragment or user info (see the schema's check). */
  url: string;
  headers?: Record<string, string>;
  credential?: HttpCredential;
  /** PEM CA bundle to trust (pinning) for an https upstream. */
  ca?: string;
  timeout: number;
}

export interface HttpConnectorConfig extends ConnectorConfig {
  type: 'http';
  upstream: HttpUpstream;
  /** Largest body buffered for masking or JSON rules, bytes. */
  max_body_bytes: number;
  /** For a masked caller, bodies the JSON rules cannot read: masked by the detectors, or refused (502). */
  unknown_content: 'detectors' | 'refuse';
  /** Method-override headers and `_method=`: judged as the method they name, or removed before the upstream. */
  method_override: 'judge' | 'strip';
  /** Request bodies up to this many bytes are sampled (masked) into the audit event. */
  audit_body_bytes: number;
}
