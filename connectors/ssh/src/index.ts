/**
 * @gatehouse/connector-ssh — SSH connector: callers log in with a token (as the password),
 * a bound public key or an OpenSSH certificate; the gateway logs in to the target with its
 * own key (known_hosts checked), judges every exec, shell, transfer and forwarding, records
 * terminals as asciicast and audits everything.
 */
import type { ConnectorModule } from '@gatehouse/core';
import { createSshConnector } from './connector.js';
import type { SshConnectorConfig } from './config.js';
import { checkSshConfig, sshSchema } from './schema.js';

/** `type: ssh`: its config keys and its factory, registered by the host (gateway, CLI). */
export const sshConnector: ConnectorModule<SshConnectorConfig> = {
  type: 'ssh',
  schema: sshSchema,
  check: checkSshConfig,
  create: createSshConnector,
};

export { createSshConnector, SshConnector } from './connector.js';
export type { SshConnectorConfig, SshUpstream, SshRecordingConfig } from './config.js';
export { sshSchema, checkSshConfig, parseSize } from './schema.js';
export { parseCommandLine, tokenize, programName, type SimpleCommand, type ParsedCommandLine } from './command.js';
export { execUnits, shellUnit, subsystemUnit, forwardUnit, sftpUnit, scpFileUnit, type Channel } from './units.js';
export { ScpStream, scpRequest, type ScpFile, type ScpRequest } from './scp.js';
export { SftpFramer, SftpTracker, FXP, type SftpOperation, type SftpFileReport, type SftpOpReport } from './sftp.js';
export { KnownHosts, matchesHost, hostName, hostKeyAlgorithms } from './known-hosts.js';
export { FailureLimiter } from './rate-limit.js';
export { loadHostKey, generateEd25519, HOST_KEY_FILE, type HostKey } from './host-key.js';
