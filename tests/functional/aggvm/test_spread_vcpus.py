#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: the guest's vCPUs run on several fragments.
# Every fragment runs its own vCPUs under -accel aggregate, in its own
# network namespace, and is home for its own NUMA node's memory; the
# APs are brought up over the links (INIT/SIPI), IPIs and device
# interrupts cross them, and the guest's memory is kept coherent by the
# DSM.  Shapes: 2 fragments x 1 vCPU (with a guest reboot before the
# poweroff), 3 x 1 and 2 x 2.  In each, the guest must see every CPU
# online and one NUMA node per fragment with that fragment's CPUs and
# memory, compute a checksum per CPU with one pinned process each, and
# end a shared counter that every CPU increments atomically at the
# exact total, and keep the TSC as its clocksource without complaining
# about it (fragments agree on the TSC); then every fragment must exit
# 0.  A last test reads a
# virtio disk whose level-triggered IOAPIC interrupt is pinned to the
# vCPU of the second fragment: every interrupt's EOI must reach the
# origin's IOAPIC, or the line stays masked and the read never ends.
#
# Copyright (c) 2026 The aggvm authors

import hashlib
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_aggregate import NODE_MB, cpu_list, run_aggregate  # noqa: E402
from aggvm_guest import expected_checksum, parse_results  # noqa: E402

CHECKSUM_N = 20000
COUNTER_N = 500

@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, userfaultfd)')
class SpreadVcpus(unittest.TestCase):

    def run_aggregate(self, nr, per, then, run, extra):
        append = ('aggvm.checksum_per_cpu=1 aggvm.checksum_n=%d '
                  'aggvm.counter_n=%d %s'
                  % (CHECKSUM_N, COUNTER_N, extra.get('append', '')))
        return run_aggregate(nr, per, then, run, append,
                             extra.get('args', []))

    def boot(self, nr, per, then='poweroff', run='info,checksum,counter',
             extra=None):
        codes, console = self.run_aggregate(nr, per, then, run, extra or {})
        r, end = parse_results(console)
        for key, value in sorted(r.items()):
            print('# guest: %s=%s' % (key, value))
        tail = '\n'.join(console.splitlines()[-40:])
        self.assertEqual(codes, [0] * nr, tail)
        self.assertEqual(end, 'AGGVM-END status=ok failed=', tail)
        return r, console

    def check_guest(self, nr, per, then='poweroff'):
        r, console = self.boot(nr, per, then)
        ncpu = nr * per
        self.assertEqual(r['info.cpus_online'], cpu_list(0, ncpu))
        self.assertEqual(r['info.nr_numa_nodes'], str(nr))
        self.assertEqual(r['info.mem_present_mb'], str(nr * NODE_MB))
        for node in range(nr):
            self.assertEqual(r['info.node%d.cpus' % node],
                             cpu_list(node * per, per))
            self.assertGreater(int(r['info.node%d.mem_total_kb' % node]),
                               NODE_MB * 1024 * 0.6)
            distance = ['20'] * nr
            distance[node] = '10'
            self.assertEqual(r['info.node%d.distance' % node],
                             ','.join(distance))
        for cpu in range(ncpu):
            self.assertEqual(r['checksum.cpu%d.sha256' % cpu],
                             expected_checksum(cpu + 1, ncpu, CHECKSUM_N))
        self.assertEqual(r['counter.cpus'], str(ncpu))
        self.assertEqual(r['counter.total'], str(ncpu * COUNTER_N))
        # tsc-early until Linux refines the calibration, then tsc.
        self.assertIn(r['guest.clocksource'], ('tsc', 'tsc-early'))
        self.assertEqual(r['guest.tsc_complaints'], '0')
        return r, console

    def test_2_fragments_1_vcpu_each_reboot_then_poweroff(self):
        r, console = self.check_guest(2, 1, then='reboot-once')
        # Both boots ran the workload; the second one powered off.
        self.assertEqual(console.count('AGGVM-END status=ok failed='), 2)
        self.assertEqual(r['lifecycle.boot'], '2')

    def test_3_fragments_1_vcpu_each(self):
        self.check_guest(3, 1)

    def test_2_fragments_2_vcpus_each(self):
        self.check_guest(2, 2)

    def test_level_triggered_interrupts_to_second_fragment(self):
        data = random.Random(7).randbytes(4 << 20)
        with tempfile.NamedTemporaryFile(prefix='aggvm-disk-') as disk:
            disk.write(data)
            disk.flush()
            # Only the origin's virtio-blk does I/O; the other fragment's
            # copy of the device is shadowed by I/O forwarding.
            r, _ = self.boot(2, 1, run='diskread', extra={
                'args': ['-drive', 'file=%s,if=none,id=d0,format=raw,'
                         'readonly=on' % disk.name,
                         '-device', 'virtio-blk-pci,drive=d0'],
                'append': 'pci=nomsi aggvm.diskread_cpu=1'})
        self.assertTrue(r['diskread.irq_kind'].startswith('IO-APIC,'),
                        r['diskread.irq_kind'])
        self.assertTrue(r['diskread.irq_kind'].endswith('-fasteoi'),
                        r['diskread.irq_kind'])
        self.assertEqual(r['diskread.sha256'],
                         hashlib.sha256(data).hexdigest())
        # Many interrupts, all taken by the vCPU on f1.
        self.assertGreater(int(r['diskread.cpu1.interrupts']), 10)
        self.assertEqual(r['diskread.cpu0.interrupts'], '0')


if __name__ == '__main__':
    unittest.main(verbosity=2)
