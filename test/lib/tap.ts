import type t from 'tap';

/** The type of the `t` a tap subtest callback receives (tap does not export it by name). */
export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];
