#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: an aggregate VM whose second fragment lends
# only memory.  f0 runs both vCPUs under -accel aggregate; f1 runs none
# and is home for half of guest RAM.  Each fragment is in its own
# network namespace.  The guest must see two NUMA nodes (node 1 without
# CPUs), compute correct checksums, and keep data it wrote into node 1's
# memory, which the DSM fetches from f1.  The guest then waits in its
# shell; after reading f1's DSM statistics, the test sends QMP quit to
# f0 alone, and both fragments must exit 0.
#
# Copyright (c) 2026 The aggvm authors

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_fragments import Namespaces, qmp_query  # noqa: E402
from aggvm_guest import (expected_checksum, guest_dir,  # noqa: E402
                         parse_results, qemu_binary)

NODE_MB = 256
CHECKSUM_N = 100000


@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, userfaultfd)')
class MemoryFragment(unittest.TestCase):

    def common_args(self, ns):
        gdir = guest_dir()
        append = ('console=ttyS0 quiet loglevel=1 panic=-1 '
                  'aggvm.run=info,checksum,memfill aggvm.then=shell '
                  'aggvm.checksum_per_cpu=1 aggvm.checksum_n=%d' % CHECKSUM_N)
        return [
            '-machine', 'aggregate,connect-timeout=60', '-accel', 'aggregate',
            '-m', '%dM' % (2 * NODE_MB), '-smp', '2',
            '-nodefaults', '-display', 'none', '-no-reboot',
            '-kernel', os.path.join(gdir, 'vmlinuz'),
            '-initrd', os.path.join(gdir, 'initrd'), '-append', append,
            '-object', 'aggregate-fragment,id=f0,address=%s:7000,cpus=0-1,'
            'mem=%dM' % (ns.addrs[0], NODE_MB),
            '-object', 'aggregate-fragment,id=f1,address=%s:7000,cpus=,'
            'mem=%dM' % (ns.addrs[1], NODE_MB),
        ]

    @staticmethod
    def wait_for_end(console, timeout):
        """Wait until the guest printed AGGVM-END on its console."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(console):
                with open(console, errors='replace') as f:
                    if 'AGGVM-END' in f.read():
                        return
            time.sleep(1)
        raise TimeoutError('the guest did not finish in %d s' % timeout)

    def run_aggregate(self):
        with Namespaces(2) as ns, \
             tempfile.TemporaryDirectory(prefix='aggvm-func-') as tmp:
            common = self.common_args(ns)
            console = os.path.join(tmp, 'console.log')
            qmp = [os.path.join(tmp, 'f%d.qmp' % i) for i in range(2)]
            logs = [open(os.path.join(tmp, 'f%d.log' % i), 'w+')
                    for i in range(2)]
            serial = ['file:' + console, 'null']
            frags = [subprocess.Popen(
                ['ip', 'netns', 'exec', ns.names[i], qemu_binary()] +
                common + ['-machine', 'fragment=f%d' % i,
                          '-serial', serial[i],
                          '-qmp', 'unix:%s,server=on,wait=off' % qmp[i]],
                stdin=subprocess.DEVNULL, stdout=logs[i],
                stderr=subprocess.STDOUT) for i in (1, 0)][::-1]
            try:
                self.wait_for_end(console, 500)
                # f1's monitor answers; it was home for node 1's pages.
                self.f1_dsm = qmp_query(qmp[1], 'query-dsm')
                # Quitting the origin ends the whole aggregate VM.
                qmp_query(qmp[0], 'quit')
                codes = [p.wait(60) for p in frags]
            finally:
                for p in frags:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            for i, log in enumerate(logs):
                log.seek(0)
                print('# f%d: %s' % (i, log.read()))
                log.close()
            with open(console, errors='replace') as f:
                return codes, f.read()

    def test_guest_uses_memory_homed_on_another_fragment(self):
        codes, console = self.run_aggregate()
        r, end = parse_results(console)
        for key, value in sorted(r.items()):
            print('# guest: %s=%s' % (key, value))
        tail = '\n'.join(console.splitlines()[-30:])
        self.assertEqual(codes, [0, 0], tail)
        self.assertEqual(end, 'AGGVM-END status=ok failed=', tail)
        self.assertEqual(r['info.cpus_online'], '0-1')
        self.assertEqual(r['info.nr_numa_nodes'], '2')
        self.assertEqual(r['info.node0.cpus'], '0-1')
        self.assertEqual(r['info.node1.cpus'], '')
        self.assertEqual(r['info.node0.distance'], '10,20')
        self.assertEqual(r['info.mem_present_mb'], str(2 * NODE_MB))
        self.assertGreater(int(r['info.node1.mem_total_kb']),
                           NODE_MB * 1024 * 0.7)
        for cpu in range(2):
            self.assertEqual(r['checksum.cpu%d.sha256' % cpu],
                             expected_checksum(cpu + 1, 2, CHECKSUM_N))
        self.assertEqual(r['memfill.match'], 'yes')
        # The fill did not fit in node 0: node 1's memory, homed on f1,
        # holds part of it.
        self.assertGreater(int(r['memfill.node1.used_kb']), 32 * 1024)
        self.assertEqual(self.f1_dsm['homed-pages'], NODE_MB * 256)
        # At least one request per page of node 1 the guest filled.
        self.assertGreater(self.f1_dsm['messages-in'], 32 * 256)


if __name__ == '__main__':
    unittest.main(verbosity=2)
