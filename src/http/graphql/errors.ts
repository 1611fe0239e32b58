import type { FastifyBaseLogger } from 'fastify';
import { GraphQLError, type ExecutionResult, type GraphQLFormattedError } from 'graphql';
import type { FieldProblem } from '../../core/validation.ts';
import { RegistryError } from '../../registry/registry.ts';
import { ApiError } from '../errors.ts';

/** `extensions` of every error this endpoint answers with. */
interface ErrorExtensions {
  readonly code: string;
  readonly details?: readonly FieldProblem[];
}

/** A GraphQL error carrying one of Maxine's error codes; `status` is what REST would answer (kept for the audit). */
export class CodedError extends GraphQLError {
  constructor(
    message: string,
    code: string,
    readonly status: number,
    details?: readonly FieldProblem[],
  ) {
    super(message, { extensions: details === undefined ? { code } : { code, details } });
  }
}

export function validationError(details: readonly FieldProblem[]): CodedError {
  const api = ApiError.validation(details);
  return new CodedError(api.message, api.code, api.status, details);
}

/** An error the client can act on, from this module or the shared REST helpers (ApiError, RegistryError); undefined for anything else. */
export function coded(error: unknown): CodedError | undefined {
  if (error instanceof CodedError) return error;
  if (error instanceof ApiError) return new CodedError(error.message, error.code, error.status, error.details);
  if (error instanceof RegistryError) return new CodedError(error.message, error.code, error.status);
  return undefined;
}

interface Classified {
  readonly error: GraphQLError;
  readonly status: number;
}

/** Fastify's body errors, as errors.ts names them for every other route. */
const TRANSPORT_CODES: Readonly<Record<number, string>> = { 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };

const INTERNAL_MESSAGE = 'Internal error; this is a bug, please report it.';

function withCode(error: GraphQLError, code: string, details?: readonly FieldProblem[]): GraphQLError {
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    path: error.path ?? null,
    originalError: error.originalError ?? null,
    extensions: details === undefined ? { ...error.extensions, code } : { ...error.extensions, code, details },
  });
}

/**
 * Gives every error a code and decides the status it would answer with.
 * mercurius wraps document errors (syntax, validation, variables) in one
 * error holding them in `errors`; those are the client's mistakes.
 */
function classify(error: GraphQLError, logger: FastifyBaseLogger): Classified[] {
  const original: unknown = error.originalError;
  const nested = (original as { errors?: unknown } | undefined)?.errors;
  if (Array.isArray(nested)) {
    // 400 for document errors; mercurius' 405 for a mutation sent with GET.
    const outer = (original as { statusCode?: unknown }).statusCode;
    const status = typeof outer === 'number' && outer >= 400 && outer < 500 ? outer : 400;
    return nested.map((inner: unknown) => {
      const graphql = inner instanceof GraphQLError ? inner : new GraphQLError(String((inner as Error).message ?? inner));
      return { error: typeof graphql.extensions.code === 'string' ? graphql : withCode(graphql, 'VALIDATION_FAILED'), status };
    });
  }
  if (original instanceof CodedError) return [{ error: withCode(error, original.extensions.code as string), status: original.status }];
  if (original instanceof ApiError) return [{ error: withCode(error, original.code, original.details), status: original.status }];
  if (original instanceof RegistryError) return [{ error: withCode(error, original.code), status: original.status }];
  if (typeof error.extensions.code === 'string') return [{ error, status: 400 }];
  // graphql-js itself found the request wrong: a variable or an argument of the wrong type, say.
  if (original === undefined || original instanceof GraphQLError) return [{ error: withCode(error, 'VALIDATION_FAILED'), status: 400 }];
  const status = (original as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const json = original instanceof SyntaxError || String((original as { code?: unknown }).code).startsWith('FST_ERR_CTP_');
    const code = TRANSPORT_CODES[status] ?? (json ? 'INVALID_JSON' : 'VALIDATION_FAILED');
    return [{ error: withCode(error, code), status }];
  }
  logger.error({ err: original }, 'unhandled error in GraphQL');
  return [{ error: new GraphQLError(INTERNAL_MESSAGE, { path: error.path ?? null, extensions: { code: 'INTERNAL' } }), status: 500 }];
}

interface FormattedResponse {
  readonly statusCode: number;
  readonly response: ExecutionResult | (Record<string, unknown> & { errors: GraphQLFormattedError[] });
}

/**
 * mercurius' errorFormatter. Executed operations answer 200 with their
 * data and errors, as GraphQL over HTTP has it. Requests refused before
 * execution answer with the refusal's status, and carry Maxine's one error
 * shape (message, code, details) beside `errors`, so they read like every
 * other route's refusals (the door in front of GraphQL is the same door).
 */
export function formatErrors(logger: FastifyBaseLogger) {
  return (execution: ExecutionResult & { errors: readonly GraphQLError[] }): FormattedResponse => {
    const classified = execution.errors.flatMap((error) => classify(error, logger));
    const errors = classified.map(({ error }) => error.toJSON());
    if ('data' in execution) return { statusCode: 200, response: { data: execution.data ?? null, errors } };
    const first = classified[0];
    const extensions = (first?.error.extensions ?? { code: 'INTERNAL' }) as unknown as ErrorExtensions;
    return {
      statusCode: first?.status ?? 500,
      response: {
        message: first?.error.message ?? INTERNAL_MESSAGE,
        code: extensions.code,
        ...(extensions.details === undefined ? {} : { details: extensions.details }),
        errors,
      },
    };
  };
}
