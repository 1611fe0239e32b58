import type { FastifyBaseLogger, FastifyError, FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { FieldProblem } from '../core/validation.ts';
import { RegistryError } from '../registry/registry.ts';

/** The one error shape every route answers with. */
export const ErrorBody = Type.Object(
  {
    message: Type.String(),
    code: Type.String(),
    details: Type.Optional(Type.Array(Type.Object({ field: Type.String(), problem: Type.String() }))),
  },
  { $id: 'Error', description: 'Every error: a message for people, a stable code for programs.' },
);

export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'INVALID_JSON'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_FOUND'
  | 'SERVICE_UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'LIMIT_EXCEEDED'
  | 'STORE_UNAVAILABLE'
  | 'BAD_GATEWAY'
  | 'GATEWAY_TIMEOUT'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: readonly FieldProblem[],
  ) {
    super(message);
  }

  static validation(details: readonly FieldProblem[]): ApiError {
    const first = details[0];
    const message = first ? `Invalid ${first.field}: ${first.problem}.` : 'Invalid request.';
    return new ApiError(400, 'VALIDATION_FAILED', message, details);
  }
}

/** What an unexpected error is answered with: it is a bug by definition. */
export const INTERNAL_ERROR = new ApiError(500, 'INTERNAL', 'Internal error; this is a bug, please report it.');

/** The bytes the error handler sends for an ApiError: its response schema orders message, code, details. */
export function errorJson(error: ApiError): string {
  return JSON.stringify({ message: error.message, code: error.code, details: error.details });
}

/** Fastify's own client errors, by code, and what they mean to a client. */
const FASTIFY_CLIENT_ERRORS: Readonly<Record<string, { status: number; code: ErrorCode; message: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'Send the body as application/json.',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'The JSON body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'The body is not valid JSON.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'INVALID_JSON',
    message: 'The Content-Length does not match the body.',
  },
};

export function installErrorHandling(app: FastifyInstance, logger: FastifyBaseLogger): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      return reply.code(error.status).send({ message: error.message, code: error.code, details: error.details });
    }
    if (error instanceof RegistryError) {
      return reply.code(error.status).send({ message: error.message, code: error.code });
    }
    if (error.validation) {
      const details = error.validation.map((v) => ({
        field: validationField(error.validationContext, v.instancePath, v.params),
        problem: v.message ?? 'is invalid',
      }));
      return reply.code(400).send({ message: `Invalid request: ${error.message}.`, code: 'VALIDATION_FAILED', details });
    }
    const known = error.code ? FASTIFY_CLIENT_ERRORS[error.code] : undefined;
    if (known) return reply.code(known.status).send({ message: known.message, code: known.code });
    if (error instanceof SyntaxError || error.statusCode === 400) {
      // Covers JSON syntax errors and prototype-poisoning refusals from the body parser.
      return reply.code(400).send({ message: `The body is not acceptable JSON: ${error.message}`, code: 'INVALID_JSON' });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ message: error.message, code: 'VALIDATION_FAILED' });
    }
    logger.error({ err: error, reqId: request.id, method: request.method, url: request.url }, 'unhandled error');
    return reply.code(500).send({ message: INTERNAL_ERROR.message, code: INTERNAL_ERROR.code });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ message: `No route ${request.method} ${request.url.split('?')[0]}.`, code: 'NOT_FOUND' });
  });
}

function validationField(context: string | undefined, instancePath: string, params: Record<string, unknown>): string {
  const missing = typeof params.missingProperty === 'string' ? params.missingProperty : undefined;
  const extra = typeof params.additionalProperty === 'string' ? params.additionalProperty : undefined;
  const path = instancePath.replace(/^\//, '').replaceAll('/', '.');
  const leaf = missing ?? extra;
  const field = [path, leaf].filter(Boolean).join('.');
  return field || context || 'request';
}
