# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional tests: boot the test guest as an aggregate VM of
# nr fragments x per vCPUs, each fragment in its own network namespace
# under -accel aggregate and home for its own NUMA node's memory, and
# return every fragment's exit code and the guest's console.
#
# Copyright (c) 2026 The aggvm authors

import os
import subprocess
import tempfile

from aggvm_fragments import Namespaces
from aggvm_guest import CPU_MODEL, guest_dir, parse_results, qemu_binary

NODE_MB = 256


def cpu_list(first, count):
    return str(first) if count == 1 else '%d-%d' % (first, first + count - 1)


def aggregate_cmdline(ns, nr, per, then, run, append='', args=(),
                      gdir=None, node_mb=NODE_MB):
    """The command line every fragment shares, but for fragment=."""
    gdir = gdir or guest_dir()
    kernel_args = ('console=ttyS0 quiet loglevel=1 panic=-1 '
                   'aggvm.run=%s aggvm.then=%s %s' % (run, then, append))
    cmd = list(args) + [
        '-machine', 'aggregate,connect-timeout=60', '-accel', 'aggregate',
        '-m', '%dM' % (nr * node_mb),
        '-smp', '%d,sockets=%d,cores=%d' % (nr * per, nr, per),
        '-cpu', CPU_MODEL, '-nodefaults', '-display', 'none',
        '-kernel', os.path.join(gdir, 'vmlinuz'),
        '-initrd', os.path.join(gdir, 'initrd'), '-append', kernel_args,
    ]
    if then != 'reboot-once':
        cmd.append('-no-reboot')
    for i in range(nr):
        cmd += ['-object', 'aggregate-fragment,id=f%d,address=%s:7000,'
                'cpus=%s,mem=%dM' % (i, ns.addrs[i], cpu_list(i * per, per),
                                     node_mb)]
    return cmd


def run_aggregate(nr, per, then, run, append='', args=(), gdir=None,
                  timeout=500):
    """Start f1..fN-1, then f0 with the console; return (codes, console).

    A fragment that has not exited when f0 has, 60 s later, is killed
    and its code is None.
    """
    with Namespaces(nr) as ns, \
         tempfile.TemporaryDirectory(prefix='aggvm-func-') as tmp:
        common = aggregate_cmdline(ns, nr, per, then, run, append, args,
                                   gdir)
        console = os.path.join(tmp, 'console.log')
        peers = []
        try:
            for i in range(1, nr):
                log = open(os.path.join(tmp, 'f%d.log' % i), 'w+')
                peers.append((log, subprocess.Popen(
                    ['ip', 'netns', 'exec', ns.names[i], qemu_binary()] +
                    common + ['-machine', 'fragment=f%d' % i,
                              '-serial', 'null'],
                    stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT)))
            try:
                f0 = subprocess.run(
                    ['ip', 'netns', 'exec', ns.names[0], qemu_binary()] +
                    common + ['-machine', 'fragment=f0',
                              '-serial', 'file:' + console],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                # Say where the guest stopped before failing.
                with open(console, errors='replace') as f:
                    print('# console tail:\n' +
                          '\n'.join(f.read().splitlines()[-60:]))
                raise
            codes = [f0.returncode]
            print('# f0: ' + f0.stdout.decode(errors='replace'))
            for log, p in peers:
                # The guest's poweroff reaches every fragment.
                try:
                    codes.append(p.wait(60))
                except subprocess.TimeoutExpired:
                    codes.append(None)
        finally:
            for log, p in peers:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                log.seek(0)
                print('# peer: ' + log.read())
                log.close()
        with open(console, errors='replace') as f:
            return codes, f.read()


class AggregateBoot:
    """A unittest.TestCase mixin: boot, check the end, return results."""

    def boot(self, nr, per, run, append, gdir=None, timeout=1500):
        codes, console = run_aggregate(nr, per, 'poweroff', run, append,
                                       gdir=gdir, timeout=timeout)
        r, end = parse_results(console)
        for key, value in sorted(r.items()):
            print('# guest: %s=%s' % (key, value))
        tail = '\n'.join(console.splitlines()[-40:])
        self.assertEqual(end, 'AGGVM-END status=ok failed=', tail)
        self.assertEqual(codes, [0] * nr, tail)
        return r

