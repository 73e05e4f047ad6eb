/**
 * Build-time constants scripts/build.mjs defines for some bundles only.
 * `__LEASE_CORE_WASM_BASE64__`: build/lease-core.wasm as base64, inlined in the browser bundle so
 * that a bundler has no asset to copy (host/runtime/browser.ts).
 */
declare const __LEASE_CORE_WASM_BASE64__: string;
