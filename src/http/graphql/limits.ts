import {
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  getNamedType,
  getNullableType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  type ASTNode,
  type ASTVisitor,
  type FieldNode,
  type GraphQLField,
  type GraphQLNamedType,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { CodedError } from './errors.ts';

/**
 * What one operation may ask for. The schema has a cycle (Instance.service ->
 * Service.instances), so depth is what stops a query from nesting without
 * end; complexity stops aliases and lists from multiplying the work.
 */
export const QUERY_LIMITS = {
  depth: 8,
  /** A listing with every field of every instance (at the estimated sizes) fits a few times over; dozens of aliased listings do not. */
  complexity: 50_000,
  /** Items in any list argument or list variable (the most tags an instance may carry). */
  listItems: 32,
  /** The largest `first` a listing takes. */
  first: 1000,
  /** What a list field is assumed to hold when no `first` says otherwise: the cost of a typical page, not a bound. */
  listEstimate: 20,
  /** An introspection field walks the whole schema: a fixed price, and it does not count towards depth. */
  introspection: 1000,
} as const;

type Variables = Readonly<Record<string, unknown>> | undefined;

interface Measure {
  readonly cost: number;
  readonly depth: number;
}

const LEAF: Measure = { cost: 1, depth: 1 };

/** How many items a list field multiplies its selection by: its `first` when the operation gives one. */
function listSize(field: FieldNode, variables: Variables): number {
  const first = field.arguments?.find((argument) => argument.name.value === 'first')?.value;
  let value: unknown;
  if (first?.kind === Kind.INT) value = Number(first.value);
  else if (first?.kind === Kind.VARIABLE) value = variables === undefined ? QUERY_LIMITS.first : variables[first.name.value];
  // A larger `first` is refused by the listing itself; here it only needs a price.
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? Math.min(value, QUERY_LIMITS.first) : QUERY_LIMITS.listEstimate;
}

function fieldDefinition(parent: GraphQLNamedType, name: string): GraphQLField<unknown, unknown> | undefined {
  return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
}

/**
 * Cost (every field 1, times the sizes of the lists around it) and depth of
 * an operation. Fragments are measured once each: a fragment spread many
 * times over cannot make the measuring itself expensive.
 */
function measureOperation(context: ValidationContext, operation: OperationDefinitionNode, variables: Variables): Measure {
  const schema = context.getSchema();
  const fragments = new Map<string, Measure>();
  const visiting = new Set<string>();

  const selections = (set: SelectionSetNode, parent: GraphQLNamedType): Measure => {
    let cost = 0;
    let depth = 0;
    for (const selection of set.selections) {
      let part: Measure;
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        const definition = fieldDefinition(parent, name);
        if (name === SchemaMetaFieldDef.name || name === TypeMetaFieldDef.name) {
          part = { cost: QUERY_LIMITS.introspection, depth: 0 };
        } else if (definition === undefined || selection.selectionSet === undefined) {
          // Unknown fields are another rule's to report.
          part = LEAF;
        } else {
          const inner = selections(selection.selectionSet, getNamedType(definition.type));
          const items = isListType(getNullableType(definition.type)) ? listSize(selection, variables) : 1;
          part = { cost: 1 + items * inner.cost, depth: 1 + inner.depth };
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        part = condition !== undefined && isCompositeType(condition) ? selections(selection.selectionSet, condition) : LEAF;
      } else {
        part = fragment(selection.name.value);
      }
      cost += part.cost;
      depth = Math.max(depth, part.depth);
    }
    return { cost, depth };
  };

  const fragment = (name: string): Measure => {
    const known = fragments.get(name);
    if (known !== undefined) return known;
    const definition = context.getFragment(name);
    // Cycles and unknown fragments are reported by the standard rules.
    if (definition == null || visiting.has(name)) return { cost: 0, depth: 0 };
    const type = schema.getType(definition.typeCondition.name.value);
    if (type === undefined || !isCompositeType(type)) return { cost: 0, depth: 0 };
    visiting.add(name);
    const measured = selections(definition.selectionSet, type);
    visiting.delete(name);
    fragments.set(name, measured);
    return measured;
  };

  const rootType = operation.operation === 'query' ? schema.getQueryType() : operation.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  return rootType ? selections(operation.selectionSet, rootType) : { cost: 0, depth: 0 };
}

/** Arrays longer than the bound anywhere in the variables, walked without recursion (the JSON may nest deeply). */
function longVariableList(variables: Variables): string | undefined {
  if (variables === undefined) return undefined;
  const pending: [string, unknown][] = Object.entries(variables);
  while (pending.length > 0) {
    const [path, value] = pending.pop()!;
    if (Array.isArray(value)) {
      if (value.length > QUERY_LIMITS.listItems) return path;
      value.forEach((item, i) => pending.push([`${path}.${i}`, item]));
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) pending.push([`${path}.${key}`, item]);
    }
  }
  return undefined;
}

const tooLong = (field: string) =>
  new CodedError(`Invalid ${field}: at most ${QUERY_LIMITS.listItems} items.`, 'VALIDATION_FAILED', 400, [
    { field, problem: `at most ${QUERY_LIMITS.listItems} items` },
  ]);

/**
 * Depth, complexity and list lengths. `variables` are the operation's when
 * known (HTTP); without them (subscriptions), a `first` given by a variable
 * is priced at its largest value.
 */
export function limitsRule(variables: Variables): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    Document() {
      const path = longVariableList(variables);
      if (path !== undefined) context.reportError(tooLong(path));
    },
    OperationDefinition(node) {
      const { cost, depth } = measureOperation(context, node, variables);
      const name = node.name === undefined ? 'The operation' : `Operation ${node.name.value}`;
      if (depth > QUERY_LIMITS.depth) {
        context.reportError(new CodedError(`${name} nests ${depth} fields deep; at most ${QUERY_LIMITS.depth} are allowed.`, 'QUERY_TOO_DEEP', 400));
      } else if (cost > QUERY_LIMITS.complexity) {
        context.reportError(
          new CodedError(
            `${name} would cost ${cost}, over the limit of ${QUERY_LIMITS.complexity} (every field counts 1, times the size of each list around it: its first, else ${QUERY_LIMITS.listEstimate}). Ask for fewer fields, fewer aliases or smaller pages.`,
            'QUERY_TOO_COMPLEX',
            400,
          ),
        );
      }
    },
    ListValue(node, _key, _parent, _path, ancestors) {
      if (node.values.length <= QUERY_LIMITS.listItems) return;
      const named = [...ancestors].reverse().find((a): a is ASTNode & { name: { value: string } } => 'kind' in a && (a.kind === Kind.ARGUMENT || a.kind === Kind.OBJECT_FIELD));
      context.reportError(tooLong(named?.name.value ?? 'list'));
    },
  });
}

/** Subscriptions need a connection to deliver on; over HTTP they would answer once with nothing. */
export const noSubscriptionOverHttp: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation === 'subscription') {
      context.reportError(
        new CodedError('Subscriptions are served over WebSocket (graphql-transport-ws) at this same path.', 'VALIDATION_FAILED', 400),
      );
    }
    return false;
  },
});
