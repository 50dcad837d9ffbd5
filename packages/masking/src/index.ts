/**
 * @gatehouse/masking — detectors and column / JSON-path masking rules.
 *
 * `compileMasking` validates a connector's `masking:` rules once; `forIdentity`
 * resolves group exemptions into a Masker (cached per distinct group set).
 */
export { compileMasking } from './engine.js';
export type { CompileMaskingOptions } from './engine.js';
export { detectors } from './detectors.js';
export type { Detector, DetectorName, Span } from './detectors.js';
export { luhnValid, ibanValid, ssnValid } from './checksums.js';
