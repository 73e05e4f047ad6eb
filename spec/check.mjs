#!/usr/bin/env node
// spec/check.mjs: model-check spec/shared-lease.pml with spin (Node 20+, ESM, no dependencies).
//
//   node spec/check.mjs            the standard set: the design must verify exhaustively with
//                                  0 errors; every seeded bug must produce its counterexample
//   node spec/check.mjs --deep     also the larger design configurations (~3 min, ~4 GB)
//   node spec/check.mjs --json     print only the JSON array of summaries
//
// Library use (e.g. from a vitest test):
//   import { checkModel, CONFIGS, runChecks, spinAvailable } from '../spec/check.mjs';
//   const r = await checkModel({ define: { BUG_VALUE_ROLLBACK: 1, ONLY_INV3: 1, MAXQ: 1 } });
//   // r = { model, define, errors, statesStored, depth, complete, violated, trail, ... }
//
// Each run: `spin -a -D...` in a fresh temp dir, `cc -O2 -DSAFETY` to build pan, `./pan` for an
// exhaustive search (full state storage, no bitstate), parse the report. With `shortest: true`
// (used for the bug configurations) pan runs with -i, so the trail it keeps is a shortest
// counterexample, which is then replayed with `spin -t` to get the violated assertion and the
// model's "MSC:" narration of the interleaving.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MODEL = join(dirname(fileURLToPath(import.meta.url)), 'shared-lease.pml');
const MODEL_NAME = 'shared-lease.pml';
const MAX_DEPTH = 100000;

/**
 * The standard configurations. `expect: 'pass'` means errors === 0 and a complete search;
 * otherwise `expect` names the assertion that must be violated (errors >= 1).
 * The model's defaults: K=2 (generation field mod 4), MAXQ=3, NOPS=3, MAXINV=3 (= 2^K - 1).
 */
export const CONFIGS = [
  {
    name: 'design',
    about: 'the protocol: one cmpxchg per extend/invalidate on W, full generation in H',
    define: {},
    expect: 'pass',
  },
  {
    name: 'bug-value-rollback-clock-tie',
    about: 'two words E/G, store-then-recheck-then-rollback by value; every extend computes the same expiry',
    define: { BUG_VALUE_ROLLBACK: 1, ONLY_INV3: 1, MAXQ: 1 },
    expect: 'inv3_fresh_lease_kept',
    shortest: true,
  },
  {
    name: 'bug-value-rollback-resurrection',
    about: 'same algorithm: a stale provisional store is visible after the invalidate completed',
    define: { BUG_VALUE_ROLLBACK: 1, ONLY_INV1: 1 },
    expect: 'inv1_no_resurrection',
    shortest: true,
  },
  {
    name: 'bug-clear-then-bump',
    about: 'invalidate as two RMWs on W (and: q=0; then add: gen+1)',
    define: { BUG_CLEAR_THEN_BUMP: 1, ONLY_INV1: 1 },
    expect: 'inv1_no_resurrection',
    shortest: true,
  },
  {
    name: 'bug-bump-then-clear',
    about: 'invalidate as two RMWs on W (add: gen+1; then and: q=0)',
    define: { BUG_BUMP_THEN_CLEAR: 1, ONLY_INV2: 1 },
    expect: 'inv2_reader_no_new_gen_old_expiry',
    shortest: true,
  },
  {
    name: 'aba-bound-extend',
    about: '2^K invalidations allowed: they fit between one extend\'s load and its cmpxchg (the documented bound)',
    define: { MAXINV: 4, NOPS: 4, ONLY_INV1: 1 },
    expect: 'inv1_no_resurrection',
    shortest: true,
  },
  {
    name: 'aba-bound-generation',
    about: '2^K invalidations allowed: they fit between generation()\'s two loads (the documented bound)',
    define: { MAXINV: 4, NOPS: 4, ONLY_GENX: 1 },
    expect: 'generation_exact',
    shortest: true,
  },
];

/** Larger design configurations, run with --deep (minutes, several GB). */
export const DEEP_CONFIGS = [
  {
    name: 'design-nops4',
    about: 'the protocol, 4 operations per writer',
    define: { NOPS: 4 },
    expect: 'pass',
    cflags: ['-DCOLLAPSE'],
  },
  {
    name: 'design-k3-nops4',
    about: 'the protocol, generation field mod 8, 4 operations per writer, up to 7 invalidations',
    define: { K: 3, NOPS: 4, MAXINV: 7 },
    expect: 'pass',
    cflags: ['-DCOLLAPSE'],
  },
];

export function spinAvailable() {
  const spin = spawnSync('spin', ['-V'], { encoding: 'utf8' });
  const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' });
  return spin.status === 0 && cc.status === 0;
}

function defineFlags(define = {}) {
  return Object.entries(define)
    .filter(([, v]) => v !== false && v !== undefined && v !== null)
    .map(([k, v]) => (v === true || v === '' ? `-D${k}` : `-D${k}=${v}`));
}

function run(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function must(cmd, args, cwd) {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

// pan prints big counts in e-notation ("1.5786719e+08 transitions")
const N = '(\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?)';

function num(re, text) {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parse pan's report. Exported for tests of the parser itself. */
export function parsePan(out) {
  const errors = num(/errors:\s*(\d+)/, out);
  const statesStored = num(new RegExp(`${N} states, stored`), out);
  const statesMatched = num(new RegExp(`${N} states, matched`), out);
  const transitions = num(new RegExp(`${N} transitions \\(= stored\\+matched\\)`), out);
  const depth = num(/depth reached (\d+)/, out);
  const stateVector = num(/State-vector (\d+) byte/, out);
  const memoryMb = num(/([\d.]+)\s+total actual memory usage/, out);
  const panSeconds = num(/pan: elapsed time ([\d.]+(?:e[+-]?\d+)?) seconds/, out);
  const firstViolation = /pan:\d+: (assertion violated .*?)(?: \(at depth \d+\))?$/m.exec(out)?.[1] ?? null;
  const truncated =
    /Search not completed/i.test(out) ||
    /max search depth too small/i.test(out) ||
    /out of memory/i.test(out) ||
    /hash table is full/i.test(out);
  const fullSearch = /Full statespace search/.test(out) && !/Bit statespace search/.test(out);
  return {
    errors,
    statesStored,
    statesMatched,
    transitions,
    depth,
    stateVector,
    memoryMb,
    panSeconds,
    firstViolation,
    complete: fullSearch && !truncated && errors !== null && depth !== null && depth < MAX_DEPTH,
  };
}

/**
 * Verify one configuration of the model.
 * @param {{define?: Record<string, number|string|boolean>, shortest?: boolean, cflags?: string[],
 *          model?: string, keep?: boolean}} [opts]
 * @returns {Promise<object>} {model, define, errors, statesStored, statesMatched, transitions,
 *          depth, complete, violated, trail, seconds, ...}
 */
export async function checkModel({ define = {}, shortest = false, cflags = [], model = MODEL, keep = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'shared-lease-spin-'));
  const t0 = performance.now();
  try {
    copyFileSync(model, join(dir, MODEL_NAME));
    const D = defineFlags(define);
    await must('spin', ['-a', ...D, MODEL_NAME], dir);
    const cc = ['-O2', '-DSAFETY', '-DMEMLIM=16384', ...(shortest ? ['-DREACH'] : []), ...cflags, '-o', 'pan', 'pan.c'];
    await must('cc', cc, dir);
    const pan = await run('./pan', ['-n', `-m${MAX_DEPTH}`, ...(shortest ? ['-i'] : [])], dir);
    const out = pan.stdout + pan.stderr;
    const summary = parsePan(out);
    let violated = null;
    let trail = [];
    if (summary.errors > 0 && existsSync(join(dir, `${MODEL_NAME}.trail`))) {
      const replay = await run('spin', ['-t', ...D, MODEL_NAME], dir);
      const text = replay.stdout + replay.stderr;
      violated = /text of failed assertion: assert\((\w+)\)/.exec(text)?.[1] ?? null;
      trail = text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('MSC:'))
        .map((l) => l.slice(4).trim());
      summary.trailSteps = num(/trail ends after (\d+) steps/, text);
    }
    if (violated === null && summary.firstViolation) {
      violated = /assertion violated (\w+)/.exec(summary.firstViolation)?.[1] ?? summary.firstViolation;
    }
    return {
      model: 'spec/shared-lease.pml',
      define,
      flags: D.join(' '),
      ...summary,
      violated,
      trail,
      seconds: Math.round((performance.now() - t0) / 10) / 100,
      panExit: pan.code,
      ...(keep ? { dir, output: out } : {}),
    };
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Judge one summary against its configuration's expectation. */
export function judge(config, r) {
  if (config.expect === 'pass') {
    if (r.errors !== 0) return `expected 0 errors, got ${r.errors} (${r.violated})`;
    if (!r.complete) return 'search not complete (depth/memory limit or truncated)';
    if (!(r.statesStored > 0)) return 'no states stored';
    return null;
  }
  if (!(r.errors >= 1)) return `expected a counterexample (${config.expect}), got errors: ${r.errors}`;
  if (r.violated !== config.expect) return `expected ${config.expect} to be violated, got ${r.violated}`;
  return null;
}

/** Run configurations, at most `parallel` at once. Resolves to [{config, result, failure}]. */
export async function runChecks(configs = CONFIGS, { parallel = Math.max(1, Math.min(2, availableParallelism())) } = {}) {
  const results = new Array(configs.length);
  let next = 0;
  async function worker() {
    while (next < configs.length) {
      const i = next++;
      const c = configs[i];
      let result;
      let failure;
      try {
        result = await checkModel({ define: c.define, shortest: !!c.shortest, cflags: c.cflags ?? [] });
        failure = judge(c, result);
      } catch (err) {
        failure = String(err?.message ?? err);
      }
      results[i] = { config: c, result, failure };
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

async function main(argv) {
  const json = argv.includes('--json');
  const configs = argv.includes('--deep') ? [...CONFIGS, ...DEEP_CONFIGS] : CONFIGS;
  if (!spinAvailable()) {
    console.error('spin and cc are required (Debian: apt-get install -y spin gcc)');
    process.exit(2);
  }
  const t0 = performance.now();
  const results = await runChecks(configs);
  const summaries = results.map(({ config, result, failure }) => ({
    name: config.name,
    expect: config.expect,
    ok: failure === null,
    ...(failure ? { failure } : {}),
    ...(result ?? {}),
  }));
  if (json) {
    console.log(JSON.stringify(summaries, null, 2));
  } else {
    for (const s of summaries) {
      const { trail, ...rest } = s;
      console.log(JSON.stringify(rest));
      if (trail?.length) for (const line of trail) console.log(`    | ${line}`);
    }
  }
  const passed = summaries.filter((s) => s.ok).length;
  const failed = summaries.length - passed;
  for (const s of summaries.filter((x) => !x.ok)) console.error(`FAIL ${s.name}: ${s.failure}`);
  if (!json) console.log(`spin checks took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2));
}
