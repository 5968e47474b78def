// Summarises Stryker's JSON report (reports/mutation/mutation.json): the
// score per file (Stryker's definition: killed + timed out over those plus
// survived and uncovered; compile errors and ignored mutants left out), and
// every mutant that survived or was not covered, with its place and change.
//
//   node scripts/mutation-summary.mjs [report.json ...] [--survivors]
//       [--save-counts docs/mutation-results/<run>.json --run "<what, when, at which commit>"]
//
// Several reports (runs over different files, e.g. the close logic and the
// rest of src/) are summed as one: a file in two reports counts from the last.
// Reports live in gitignored reports*/ directories and are lost with the
// checkout; --save-counts keeps a run's per-file counts (no sources, no
// mutants) in a small file that can be committed and summed later in their
// place (docs/mutation-results/).
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const flagValues = new Set(['--save-counts', '--run'].map(flag).filter(Boolean));
const given = args.filter((a) => !a.startsWith('--') && !flagValues.has(a));

const STATUSES = ['killed', 'timeout', 'survived', 'noCoverage', 'ignored', 'compileError'];
const countMutants = (mutants) => {
  const by = (...s) => mutants.filter((m) => s.includes(m.status)).length;
  return { killed: by('Killed'), timeout: by('Timeout'), survived: by('Survived'), noCoverage: by('NoCoverage'),
    ignored: by('Ignored'), compileError: by('CompileError', 'RuntimeError') };
};
const sum = (counts) => Object.fromEntries(STATUSES.map((s) => [s, counts.reduce((n, c) => n + c[s], 0)]));
const score = (c) => {
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  return valid ? (100 * detected) / valid : NaN;
};

/** name -> { counts, from, sourceFile (full reports only) } */
const files = new Map();
for (const path of given.length ? given : ['reports/mutation/mutation.json']) {
  const report = JSON.parse(readFileSync(path, 'utf8'));
  if (report.kind === 'socket-linger-mutation-counts') {
    for (const [name, counts] of Object.entries(report.files)) files.set(name, { counts, from: report.run });
  } else {
    for (const [name, f] of Object.entries(report.files)) files.set(name, { counts: countMutants(f.mutants), file: f });
  }
}
// The close module (socket-close.ts, with its deadline queue and slices), the
// public close functions, the guard, linger.ts, handle.ts, reading.ts, poller.ts.
const CLOSE_LOGIC = ['src/socket-close.ts', 'src/deadlines.ts', 'src/slices.ts', 'src/close.ts', 'src/close-guard.ts',
  'src/linger.ts', 'src/handle.ts', 'src/reading.ts', 'src/poller.ts'];

const pct = (n) => (Number.isNaN(n) ? '   n/a' : `${n.toFixed(1).padStart(5)}%`);
const row = (name, c) => `| ${name} | ${pct(score(c))} | ${STATUSES.map((s) => c[s]).join(' | ')} |`;

const names = [...files.keys()].sort((a, b) => a.localeCompare(b));
console.log('| file | score | killed | timed out | survived | no coverage | ignored (static, or marked equivalent) | type errors |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const name of names) console.log(row(name, files.get(name).counts));
const close = names.filter((n) => CLOSE_LOGIC.includes(n)).map((n) => files.get(n).counts);
if (close.length) console.log(row('**close logic**', sum(close)));
console.log(row('**all mutated files**', sum(names.map((n) => files.get(n).counts))));
const saved = [...new Set(names.map((n) => files.get(n).from).filter(Boolean))];
if (saved.length) console.log(`\nFrom saved counts: ${saved.join('; ')}`);

if (args.includes('--save-counts')) {
  const out = flag('--save-counts');
  const run = flag('--run');
  if (!out || !run) throw new Error('--save-counts <file> needs --run "<what, when, at which commit>"');
  const counted = Object.fromEntries(names.filter((n) => files.get(n).file).map((n) => [n, files.get(n).counts]));
  writeFileSync(out, `${JSON.stringify({ kind: 'socket-linger-mutation-counts', run, files: counted }, null, 2)}\n`);
  console.log(`\nSaved the counts of ${Object.keys(counted).length} files to ${out}`);
}

if (args.includes('--survivors')) {
  for (const name of names) {
    const f = files.get(name).file;
    if (!f) continue; // saved counts hold no mutants
    const lines = f.source.split('\n');
    for (const m of f.mutants.filter((m) => m.status === 'Survived' || m.status === 'NoCoverage')) {
      const { line, column } = m.location.start;
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 80);
      console.log(`\n${name}:${line}:${column} ${m.status} ${m.mutatorName} -> ${replacement}\n    ${lines[line - 1].trim().slice(0, 140)}`);
    }
  }
}
