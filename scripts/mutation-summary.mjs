// Summarises Stryker's JSON report (reports/mutation/mutation.json): the
// score per file (Stryker's definition: killed + timed out over those plus
// survived and uncovered; compile errors and ignored mutants left out), and
// every mutant that survived or was not covered, with its place and change.
//
//   node scripts/mutation-summary.mjs [report.json ...] [--survivors]
//
// Several reports (runs over different files, e.g. the close logic and the
// rest of src/) are summed as one: a file in two reports counts from the last.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const given = args.filter((a) => !a.startsWith('--'));
const report = { files: {} };
for (const file of given.length ? given : ['reports/mutation/mutation.json']) {
  Object.assign(report.files, JSON.parse(readFileSync(file, 'utf8')).files);
}
// The close module (socket-close.ts, with its deadline queue and slices), the
// public close functions, the guard, linger.ts, handle.ts, reading.ts, poller.ts.
const CLOSE_LOGIC = ['src/socket-close.ts', 'src/deadlines.ts', 'src/slices.ts', 'src/close.ts', 'src/close-guard.ts',
  'src/linger.ts', 'src/handle.ts', 'src/reading.ts', 'src/poller.ts'];

const count = (mutants) => {
  const by = (s) => mutants.filter((m) => m.status === s).length;
  const c = { total: mutants.length, killed: by('Killed'), timeout: by('Timeout'), survived: by('Survived'),
    noCoverage: by('NoCoverage'), ignored: by('Ignored'), compileError: by('CompileError') + by('RuntimeError') };
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  c.score = valid ? (100 * detected) / valid : NaN;
  return c;
};
const pct = (n) => (Number.isNaN(n) ? '   n/a' : `${n.toFixed(1).padStart(5)}%`);
const row = (name, c) => `| ${name} | ${pct(c.score)} | ${c.killed} | ${c.timeout} | ${c.survived} | ${c.noCoverage} | ${c.ignored} | ${c.compileError} |`;

const files = Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b));
console.log('| file | score | killed | timed out | survived | no coverage | ignored (static, or marked equivalent) | type errors |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, f] of files) console.log(row(name, count(f.mutants)));
const all = files.flatMap(([, f]) => f.mutants);
const close = files.filter(([n]) => CLOSE_LOGIC.includes(n)).flatMap(([, f]) => f.mutants);
if (close.length) console.log(row('**close logic**', count(close)));
console.log(row('**all mutated files**', count(all)));

if (args.includes('--survivors')) {
  for (const [name, f] of files) {
    const lines = f.source.split('\n');
    for (const m of f.mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')) {
      const { line, column } = m.location.start;
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 80);
      console.log(`\n${name}:${line}:${column} ${m.status} ${m.mutatorName} -> ${replacement}\n    ${lines[line - 1].trim().slice(0, 140)}`);
    }
  }
}
