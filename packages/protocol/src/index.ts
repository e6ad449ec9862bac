// @confab/protocol: the wire contract shared by server, SDK and CLI. No Node APIs here.
export * from './ids.js';
export * from './codes.js';
export * from './limits.js';
export * from './rates.js';
export * from './model.js';
export * from './frames.js';
export * from './rest.js';
export * from './validate.js';
export * from './docs.js';
