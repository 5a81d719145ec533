#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: guest code stays coherent across fragments.
#
# Cross-modifying code (guest program xmc): a CPU rewrites a small
# function and then raises a flag; a CPU on another fragment (or on the
# same one, for the local race) waits for the flag, executes cpuid and
# calls the function, which must return the new value every round,
# 10,000 rounds per run.  Cases: (a) the function and the flag in
# different pages, (b) in one page, (c) the function spanning two
# pages; writers on the origin and elsewhere, callers too, and both on
# one fragment.  A fragment whose vCPU ran a translation of the old
# code after it acknowledged giving the page up would return the old
# value; so would a translation linked while a local store was landing.
#
# A soak (guest command soak): the 6.12 guest on 2 x 2 with the
# kernel's default command line (but for a longer soft-lockup
# threshold: the function tracer is slow to turn on) stays up for
# 120 s running a mix (a CPU-bound process per CPU, a shared atomic
# counter, a mutex-protected array, message passing, fork/exec loops,
# static-key flips and the function tracer), every result exact and
# dmesg clean.  bench/soak runs it many times.
#
# Copyright (c) 2026 The aggvm authors

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_aggregate import AggregateBoot  # noqa: E402
from aggvm_guest import guest_612_dir  # noqa: E402

XMC_ROUNDS = 10000
SOAK_SECONDS = 120
# See test_selfpatch.py: the function tracer takes 40-50 s to turn on.
SLOW_PATCHING = 'watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=120'


@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, userfaultfd)')
class Coherence(AggregateBoot, unittest.TestCase):

    def check_soak(self, nr, per, gdir):
        r = self.boot(nr, per, 'info,soak',
                      'aggvm.soak_seconds=%d %s'
                      % (SOAK_SECONDS, SLOW_PATCHING), gdir,
                      timeout=SOAK_SECONDS + 1200)
        self.assertEqual(r['soak.dmesg_bad'], '0')
        for part in ('loader', 'counter', 'mutex', 'msgpass', 'forkexec',
                     'schedstats', 'ftrace'):
            self.assertEqual(r['soak.%s.failures' % part], '0', part)
            self.assertGreater(int(r['soak.%s.rounds' % part]), 0, part)

    def check_xmc(self, nr, per, runs, gdir=None):
        r = self.boot(nr, per, 'xmc',
                      'aggvm.xmc_runs=%s aggvm.xmc_rounds=%d'
                      % (','.join(runs), XMC_ROUNDS), gdir)
        self.assertEqual(r['xmc.runs'], str(len(runs)))
        self.assertEqual(r['xmc.failed'], '0')
        for run in runs:
            line = r['xmc.' + run.replace(':', '_')]
            fields = dict(kv.split('=', 1) for kv in line.split())
            self.assertEqual(fields['rounds'], str(XMC_ROUNDS), line)
            self.assertEqual(fields['errors'], '0', line)

    # Cases a, b, c; both directions between the origin and elsewhere.
    def test_xmc_2_fragments_1_vcpu_each(self):
        self.check_xmc(2, 1, ['a:0:1', 'b:1:0', 'c:0:1'])

    # Also between two fragments that are not the origin.
    def test_xmc_3_fragments_1_vcpu_each(self):
        self.check_xmc(3, 1, ['a:1:2', 'b:2:0', 'c:0:1'])

    # Also writer and caller on one fragment, the origin and the other
    # (a store racing a translation on the same fragment: patch 0014).
    def test_xmc_2_fragments_2_vcpus_each(self):
        self.check_xmc(2, 2, ['a:0:2', 'b:3:1', 'c:1:2', 'a:0:1', 'c:3:2'])


    def test_soak_kernel_612_2_fragments_2_vcpus_each(self):
        gdir = guest_612_dir()
        if not os.path.exists(os.path.join(gdir, 'vmlinuz')):
            self.skipTest('no 6.12 guest in %s' % gdir)
        self.check_soak(2, 2, gdir)


if __name__ == '__main__':
    unittest.main(verbosity=2)
