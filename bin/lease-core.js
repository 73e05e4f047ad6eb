#!/usr/bin/env node
// The `lease-core` command (`lease-core doctor`, ...): a thin launcher for the bundled CLI.
import { main } from "../build/cli.js";

process.exitCode = await main(process.argv.slice(2));
