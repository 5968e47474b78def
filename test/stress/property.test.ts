// The property-based suite (test/property.test.ts) with many more runs:
// PROPERTY_RUNS, default 2000 here (set in vitest.stress.config.ts).
import '../property.test';
