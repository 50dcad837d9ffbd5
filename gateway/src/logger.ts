/** pino: JSON lines, or pretty when standard output is a terminal. */
import { pino } from 'pino';
import type { Logger } from '@gatehouse/core';

export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger & { flush?: () => void } {
  return pino({
    level,
    base: { service: 'gatehouse' },
    // Belt and braces: these fields must never reach a log line even if passed by mistake.
    redact: { paths: ['token', 'password', '*.token', '*.password', 'authorization', '*.authorization'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } } : {}),
  });
}
