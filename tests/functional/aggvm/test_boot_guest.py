#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: the test guest boots on one stock QEMU process
# (q35, TCG, 2 vCPUs, 2 NUMA nodes) and reports what it sees.  This is
# the baseline every aggregate boot test is compared with.
#
# Copyright (c) 2026 The aggvm authors

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_guest import GuestRun, expected_checksum  # noqa: E402

NODE_MB = 512
CHECKSUM_N = 200000


class BootGuest(unittest.TestCase):

    def boot(self):
        qemu_args = [
            '-machine', 'q35', '-accel', 'tcg,thread=multi',
            '-smp', '2', '-m', '%dM' % (2 * NODE_MB),
        ]
        for node in range(2):
            qemu_args += [
                '-object', 'memory-backend-ram,id=m%d,size=%dM'
                % (node, NODE_MB),
                '-numa', 'node,nodeid=%d,cpus=%d,memdev=m%d'
                % (node, node, node),
            ]
        run = GuestRun(qemu_args, ['info', 'checksum'],
                       {'checksum_n': CHECKSUM_N, 'checksum_per_cpu': 1})
        return run.start()

    def test_guest_sees_cpus_numa_memory_and_computes(self):
        res = self.boot()
        r = res.results
        for key, value in sorted(r.items()):
            print('# guest: %s=%s' % (key, value))
        self.assertEqual(res.returncode, 0, res.tail())
        self.assertEqual(res.end, 'AGGVM-END status=ok failed=', res.tail())

        self.assertEqual(r['info.cpus_online'], '0-1')
        self.assertEqual(r['info.nr_cpus_online'], '2')
        self.assertEqual(r['info.nr_numa_nodes'], '2')
        self.assertEqual(r['info.numa_nodes_online'], '0-1')
        for node in range(2):
            self.assertEqual(r['info.node%d.cpus' % node], str(node))
            # The kernel keeps part of each node for itself; the rest
            # must be most of the node.
            kb = int(r['info.node%d.mem_total_kb' % node])
            self.assertLessEqual(kb, NODE_MB * 1024)
            self.assertGreater(kb, NODE_MB * 1024 * 0.7)
        self.assertEqual(r['info.mem_present_mb'], str(2 * NODE_MB))

        for cpu in range(2):
            self.assertEqual(r['checksum.cpu%d.sha256' % cpu],
                             expected_checksum(cpu + 1, 2, CHECKSUM_N))


if __name__ == '__main__':
    unittest.main(verbosity=2)
