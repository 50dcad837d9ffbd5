/**
 * The admin server's own errors — admin API, approvals API, console routes — as problem
 * details (the scheme of docs/operations.md): one error class and one status → code, title
 * table, answered in one place (admin.ts).
 */
import type { Problem } from '@gatehouse/core';

const PROBLEMS = {
  400: ['bad-request', 'Bad Request'],
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Forbidden'],
  404: ['not-found', 'Not Found'],
  405: ['method-not-allowed', 'Method Not Allowed'],
  409: ['conflict', 'Conflict'],
  413: ['too-large', 'Content Too Large'],
  500: ['internal', 'Internal Server Error'],
  503: ['unavailable', 'Service Unavailable'],
} as const;

export type AdminStatus = keyof typeof PROBLEMS;

/** A refusal the admin server answers with its status and message (never a stack or a cause). */
export class AdminError extends Error {
  constructor(
    readonly status: AdminStatus,
    message: string,
  ) {
    super(message);
  }
}

export function problemOf(status: AdminStatus, detail: string): Problem {
  const [code, title] = PROBLEMS[status];
  return { code, status, title, detail };
}
