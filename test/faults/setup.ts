// globalSetup of the fault suite (vitest.faults.config.ts): the tools it
// needs (installed with apt when missing), root, and no namespaces left over
// from runs that were killed.
import { execFileSync } from 'node:child_process';
import { removeStaleNamespaces } from './netns';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export default function setup() {
  if (process.getuid?.() !== 0)
    throw new Error('the fault suite needs root (network namespaces, nftables)');
  const missing: string[] = [];
  if (!has('nft')) missing.push('nftables');
  if (!has('ip') || !has('ss')) missing.push('iproute2');
  if (!has('python3')) missing.push('python3');
  if (missing.length > 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    console.log(`fault suite: apt-get install ${missing.join(' ')}`);
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
  const stale = removeStaleNamespaces();
  if (stale.length > 0) console.log(`fault suite: removed stale namespaces ${stale.join(', ')}`);
  return () => {
    removeStaleNamespaces();
  };
}
