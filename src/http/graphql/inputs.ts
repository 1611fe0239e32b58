import { Kind, valueFromASTUntyped, type ValueNode } from 'graphql';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import type { FieldProblem } from '../../core/validation.ts';
import { RegisterBody } from '../maxine/registration.ts';
import { InstanceRef } from '../maxine/instance-key.ts';
import { StatusReason } from '../maxine/instances.ts';
import { validationError } from './errors.ts';
import { QUERY_LIMITS } from './limits.ts';

/**
 * Mutation arguments pass through the very schemas the REST routes validate
 * their bodies with, then the same functions, so GraphQL accepts exactly
 * what REST accepts. GraphQL has already checked the types; these add the
 * lengths, ranges and patterns.
 */

const StatusChange = Type.Object({ ...InstanceRef.properties, reason: Type.Optional(StatusReason) });

const registerBody = Compile(RegisterBody);
const instanceRef = Compile(InstanceRef);
const statusChange = Compile(StatusChange);

function checked<T>(validator: { Check(value: unknown): boolean; Errors(value: unknown): { instancePath: string; message: string }[] }, value: unknown): T {
  if (validator.Check(value)) return value as T;
  const problems = new Map<string, FieldProblem>();
  for (const { instancePath, message } of validator.Errors(value)) {
    const field = instancePath.replace(/^\//, '').replaceAll('/', '.') || 'input';
    // A union (port) explains itself once per branch; its first explanation is the useful one.
    if (!problems.has(field)) problems.set(field, { field, problem: message });
  }
  throw validationError([...problems.values()]);
}

/** GraphQL's explicit null means "not given", as an absent JSON field does for REST. Keys are the schema's field names. */
function withoutNulls(input: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) if (value !== null && value !== undefined) out[key] = value;
  return out;
}

export function registerBodyOf(input: Readonly<Record<string, unknown>>): RegisterBody {
  const body = withoutNulls(input);
  if (body.check !== undefined) body.check = withoutNulls(body.check as Record<string, unknown>);
  return checked<RegisterBody>(registerBody, body);
}

export function instanceRefOf(args: { serviceName: string; nodeName: string }): { serviceName: string; nodeName: string } {
  return checked(instanceRef, { serviceName: args.serviceName, nodeName: args.nodeName });
}

export function statusChangeOf(args: { serviceName: string; nodeName: string; reason?: string | null }): { serviceName: string; nodeName: string; reason?: string } {
  return checked(statusChange, withoutNulls({ serviceName: args.serviceName, nodeName: args.nodeName, reason: args.reason }));
}

/** The `first` of a listing, refused beyond its bound rather than quietly cut. */
export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return Infinity;
  if (first < 0 || first > QUERY_LIMITS.first) throw validationError([{ field: 'first', problem: `must be from 0 to ${QUERY_LIMITS.first}` }]);
  return first;
}

function stringMap(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('must be an object of strings');
  const entries = Object.entries(value);
  if (entries.some(([, v]) => typeof v !== 'string')) throw new TypeError('every value must be a string');
  // A fresh object: keys arrive from the client and must not become anything but own data properties.
  return Object.fromEntries(entries) as Record<string, string>;
}

function port(value: unknown): number | string {
  if (typeof value === 'number' || typeof value === 'string') return value;
  throw new TypeError('must be an integer or a string of digits');
}

/** Resolvers of the custom scalars, in the shape mercurius copies onto the schema's types. */
export const scalarResolvers = {
  SafeInt: {
    serialize(value: unknown): number {
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      throw new TypeError(`SafeInt cannot represent ${String(value)}`);
    },
  },
  StringMap: {
    serialize: stringMap,
    parseValue: stringMap,
    parseLiteral: (ast: ValueNode, variables?: Record<string, unknown> | null) => stringMap(valueFromASTUntyped(ast, variables)),
  },
  Port: {
    serialize: port,
    parseValue: port,
    parseLiteral(ast: ValueNode): number | string {
      if (ast.kind === Kind.INT) return Number(ast.value);
      if (ast.kind === Kind.STRING) return ast.value;
      throw new TypeError('must be an integer or a string of digits');
    },
  },
} satisfies Record<string, Record<string, (...args: never[]) => unknown>>;
