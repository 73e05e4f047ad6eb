// `npm run sim`: the simulator from the command line (scripts/sim.mjs bundles and runs this).
//   SIM_SEED=<seed> npm run sim            replay one seed: its faults, stats and verdict
//   npm run sim -- --seeds N [--from S]    N seeds from S (default: a random, printed start)
//   npm run sim -- --scenarios             the negative controls and incident replays
// Exit status 1 on any violation (or a control that does not fire).
import { describeFailure, runSeed } from "./random.js";
import { SCENARIOS } from "./scenarios.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const single = process.env["SIM_SEED"];
  if (single !== undefined) {
    const r = await runSeed(Number(single) >>> 0);
    const ok = r.check.ok === true && r.violations.length === 0;
    console.log(ok ? `sim seed ${r.seed}: ok (${r.voters} voters) ${JSON.stringify(r.stats)}\n  faults:\n${r.faults.map((f) => `    ${f}`).join("\n")}` : describeFailure(r));
    return ok ? 0 : 1;
  }
  if (process.argv.includes("--scenarios")) {
    let bad = 0;
    for (const s of SCENARIOS) {
      const on = await s.run({ ...s.base });
      const off = await s.run({ ...s.base, ...s.control });
      const pass = on.check.ok === true && off.check.ok === false;
      if (!pass) bad++;
      console.log(`${pass ? "ok  " : "FAIL"} ${s.name} [${s.incident}]: guard on → ${JSON.stringify(on.check.ok)}, control ${JSON.stringify(s.control)} → ${JSON.stringify(off.check.ok)}`);
    }
    return bad === 0 ? 0 : 1;
  }
  const count = Number(arg("--seeds") ?? 100);
  const from = arg("--from") === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(arg("--from"));
  console.log(`sim: ${count} seeds from ${from}`);
  const started = performance.now();
  let failed = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSeed(seed >>> 0);
    if (r.check.ok !== true || r.violations.length > 0) {
      failed++;
      console.log(describeFailure(r));
    }
    if ((seed - from + 1) % 500 === 0) console.log(`  ${seed - from + 1}/${count} (${failed} failed, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  console.log(`sim: ${count} seeds from ${from}: ${failed} failed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
