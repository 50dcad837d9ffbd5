/**
 * A value now or a promise of it. A connector's hot path continues synchronously when nothing
 * has to wait (an authenticated connection, an allow decision, a `batched` audit record, a
 * body without Content-Encoding): each `await` of a plain value would still cost a promise
 * and a trip through the microtask queue, several times per unit
 * (docs/decisions/0505-http-hot-path.md).
 */
export type Maybe<T> = T | Promise<T>;

/**
 * `f(v)` now when `v` is a value, after it settles when it is a promise. Every promise here
 * comes from core's Session or the connector itself (native); a foreign thenable would be
 * taken for a value and fail closed (no `ok` result, no decision: refused).
 */
export function then<T, U>(v: Maybe<T>, f: (x: T) => Maybe<U>): Maybe<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}
