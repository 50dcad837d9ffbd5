/**
 * @gatehouse/policy — rule matching for connectors.
 *
 * `compilePolicy` turns a connector's `rules:` into a synchronous PolicyEngine
 * (first matching rule decides, no match → allow). `sqlUnits` turns SQL text into
 * policy Units using the real PostgreSQL parser (call `initSqlParser()` once first).
 */
export { compilePolicy, knownMatchKeys } from './compile.js';
export type { CompilePolicyOptions } from './compile.js';
export { initSqlParser, classifySql, sqlParserReady } from './sql-classify.js';
export type { SqlStatement, SqlWhere } from './sql-classify.js';
export { restrictedSqlViolation } from './restricted-sql.js';
export type { SqlColumnUse, RestrictedSqlView } from './restricted-sql.js';
export { sqlUnits, sqlUnitCacheSize } from './sql-units.js';
export { compileGlob, type GlobOptions } from './glob.js';
export { classifyMysql, mysqlUnits, lexMysql } from './mysql-classify.js';
export type { MysqlStatement, MysqlClassifyOptions, MysqlUnitsOptions, Token as MysqlToken } from './mysql-classify.js';
