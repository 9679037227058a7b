// The bus benchmark's peer (`cargo xtask bench bus`): graphile-worker draining N no-op jobs,
// in its default mode or with its local queue and batched completions.
//
//   node tools/graphile-bench.mjs DATABASE_URL N default|local
//
// Prints one JSON line: the mode, the jobs and the jobs handled per second.
import { Logger, makeWorkerUtils, run } from "graphile-worker";

const [url, count, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
if (!url || !count || !["default", "local"].includes(mode)) {
  console.error("usage: node tools/graphile-bench.mjs DATABASE_URL N default|local");
  process.exit(2);
}
const concurrency = 24;
// Errors only: a line per job would measure the terminal.
const logger = new Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});
const utils = await makeWorkerUtils({ connectionString: url, logger });
await utils.migrate();
for (let start = 0; start < count; start += 1000) {
  const jobs = [];
  for (let n = start; n < Math.min(start + 1000, count); n++) jobs.push({ identifier: "noop", payload: { n } });
  await utils.addJobs(jobs);
}
let handled = 0;
let finished;
const done = new Promise((resolve) => (finished = resolve));
const preset =
  mode === "local"
    ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } }
    : {};
const started = performance.now();
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger,
  taskList: {
    noop: async () => {
      handled += 1;
      if (handled === count) finished();
    },
  },
  preset,
});
await done;
const seconds = (performance.now() - started) / 1000;
await runner.stop();
await utils.release();
console.log(JSON.stringify({ mode, jobs: count, concurrency, per_s: count / seconds }));
