#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: the guest kernel patches its own code under
# load (guest command selfpatch).  While a CPU-bound process runs on
# every CPU, the guest flips the static key behind
# kernel.sched_schedstats 200 times and turns the function tracer on
# and off twice (text_poke_bp() on every call site, with int3 and sync
# IPIs across the fragments); dmesg must stay clean and every checksum
# exact.  On 2 x 2 and 3 x 1 (the 6.12 kernel does the same in
# test_coherence's soak).
#
# Copyright (c) 2026 The aggvm authors

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_aggregate import AggregateBoot  # noqa: E402
from aggvm_guest import expected_checksum  # noqa: E402

SELFPATCH_N = 20000

# Turning the function tracer on patches some 40,000 call sites, each
# page of kernel text moving between the fragments several times: one
# CPU spends 40-50 s in it without scheduling (twice stock TCG's time
# here), and the soft-lockup detector (20 s) and RCU's CPU stall
# warning (21 s) would report it.  Raised to 120 s, not disabled, so
# that a CPU really stuck is still reported.
SLOW_PATCHING = 'watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=120'


@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, userfaultfd)')
class SelfPatch(AggregateBoot, unittest.TestCase):

    def check_selfpatch(self, nr, per, gdir=None, flips=200, ftrace=2):
        ncpu = nr * per
        r = self.boot(nr, per, 'selfpatch',
                      'aggvm.selfpatch_flips=%d aggvm.selfpatch_ftrace=%d '
                      'aggvm.selfpatch_n=%d %s'
                      % (flips, ftrace, SELFPATCH_N, SLOW_PATCHING),
                      gdir)
        self.assertEqual(r['selfpatch.flips'], str(flips))
        self.assertEqual(r['selfpatch.ftrace_cycles'], str(ftrace))
        self.assertEqual(r['selfpatch.dmesg_bad'], '0')
        for cpu in range(ncpu):
            self.assertEqual(r['selfpatch.cpu%d.sha256' % cpu],
                             expected_checksum(cpu + 1, ncpu, SELFPATCH_N))
            self.assertEqual(r['selfpatch.cpu%d.mismatches' % cpu], '0')
            self.assertGreater(int(r['selfpatch.cpu%d.runs' % cpu]), 0)

    def test_selfpatch_2_fragments_2_vcpus_each(self):
        self.check_selfpatch(2, 2)

    def test_selfpatch_3_fragments_1_vcpu_each(self):
        self.check_selfpatch(3, 1)

if __name__ == '__main__':
    unittest.main(verbosity=2)
