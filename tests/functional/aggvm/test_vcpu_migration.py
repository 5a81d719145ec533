#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: vCPUs move between fragments while the guest
# runs (QMP aggregate-vcpu-migrate).  Two fragments, one vCPU each, in
# their own network namespaces.  While every CPU computes a checksum
# with one pinned process each, the vCPUs move back and forth many
# times, including both onto one fragment and back; the requests go
# to either fragment's monitor, whether it runs the vCPU or not.  Then,
# with the two vCPUs swapped (each on the other fragment than it
# started on), every CPU must still take its timer interrupts, the
# shared counter must end exact and the checksums must be right.  The
# guest then reboots: the reset puts each vCPU back where the command
# line placed it, the second boot runs everything again, and the guest
# powers off with every fragment exiting 0.  The monitors must refuse
# bad requests with clear errors.  Both fragments must read the guest's
# virtual clock and TSC alike (query-aggregate), after the start and
# after a stop and cont.
#
# Copyright (c) 2026 The aggvm authors

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_fragments import Namespaces, QMPClient  # noqa: E402
from aggvm_guest import (CPU_MODEL, expected_checksum,  # noqa: E402
                         guest_dir, parse_results, qemu_binary)

NODE_MB = 256
CHECKSUM_N = 3000000
COUNTER_N = 500
MIN_MOVES = 12
MOVE_GAP_S = 0.25
# Both vCPUs onto f0, both onto f1, and back to where they started.
PLAN = [(1, 'f0'), (0, 'f1'), (1, 'f1'), (0, 'f0')]
# Where they stay for the rest of the run: each on the other fragment.
FINAL = [(0, 'f1'), (1, 'f0')]


def console_has(path, text, after=None):
    with open(path, errors='replace') as f:
        console = f.read()
    if after:
        console = console[console.rfind(after):] if after in console else ''
    return text in console


@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, userfaultfd)')
class VcpuMigration(unittest.TestCase):

    def args(self, ns):
        gdir = guest_dir()
        append = ('console=ttyS0 quiet loglevel=1 panic=-1 '
                  'aggvm.run=checksum,ticks,counter aggvm.then=reboot-once '
                  'aggvm.checksum_per_cpu=1 aggvm.checksum_n=%d '
                  'aggvm.counter_n=%d' % (CHECKSUM_N, COUNTER_N))
        args = ['-machine', 'aggregate,connect-timeout=60',
                '-accel', 'aggregate', '-m', '%dM' % (2 * NODE_MB),
                '-smp', '2,sockets=2,cores=1', '-cpu', CPU_MODEL,
                '-nodefaults', '-display', 'none',
                '-kernel', os.path.join(gdir, 'vmlinuz'),
                '-initrd', os.path.join(gdir, 'initrd'), '-append', append]
        for i in range(2):
            args += ['-object', 'aggregate-fragment,id=f%d,address=%s:7000,'
                     'cpus=%d,mem=%dM' % (i, ns.addrs[i], i, NODE_MB)]
        return args

    def start(self, ns, tmp):
        self.console = os.path.join(tmp, 'console.log')
        self.procs, self.logs, self.qmp = [], [], {}
        for i in (1, 0):
            log = open(os.path.join(tmp, 'f%d.log' % i), 'w+')
            serial = 'file:' + self.console if i == 0 else 'null'
            qmp = os.path.join(tmp, 'f%d.qmp' % i)
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                ['ip', 'netns', 'exec', ns.names[i], qemu_binary()] +
                self.args(ns) +
                ['-machine', 'fragment=f%d' % i, '-serial', serial,
                 '-qmp', 'unix:%s,server=on,wait=off' % qmp],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT))
            self.qmp['f%d' % i] = QMPClient(qmp, self.procs[-1])

    def stop(self):
        for qmp in self.qmp.values():
            qmp.close()
        for log, p in zip(self.logs, self.procs):
            if p.poll() is None:
                p.kill()
                p.wait()
            log.seek(0)
            print('# fragment log: ' + log.read())
            log.close()

    def wait_console(self, text, timeout, after=None):
        """Wait for @text, or for @text after the last @after."""
        deadline = time.monotonic() + timeout
        while not console_has(self.console, text, after):
            if time.monotonic() > deadline or self.procs[1].poll() is not None:
                with open(self.console, errors='replace') as f:
                    tail = '\n'.join(f.read().splitlines()[-30:])
                self.fail('no "%s" on the console:\n%s' % (text, tail))
            time.sleep(0.2)

    def placement(self, frag):
        info = self.qmp[frag].command('query-aggregate')
        self.assertEqual(info['fragment'], frag)
        return {f['id']: f['vcpus'] for f in info['fragments']}

    def check_clocks_agree(self):
        """f1 reads both guest clocks as f0 does, between two reads of
        f0's, give or take half the round trip of its last agreement."""
        before = self.qmp['f0'].command('query-aggregate')['clock']
        f1 = self.qmp['f1'].command('query-aggregate')['clock']
        after = self.qmp['f0'].command('query-aggregate')['clock']
        self.assertNotIn('agreements', before)      # the origin
        self.assertGreaterEqual(f1['agreements'], 1)
        slack_ns = f1['round-trip-us'] * 1000 // 2 + 1000
        # Host ticks per nanosecond, from f0's two readings.
        rate = ((after['ticks'] - before['ticks']) /
                max(1, after['virtual-clock-ns'] - before['virtual-clock-ns']))
        for key, slack in (('virtual-clock-ns', slack_ns),
                           ('ticks', int(slack_ns * rate) + 1)):
            self.assertLessEqual(before[key] - slack, f1[key], key)
            self.assertLessEqual(f1[key], after[key] + slack, key)
        print('# clocks: f1 agreed %d times, last round trip %d us, '
              'virtual clock delta %d ns; f1 read between f0\'s two reads '
              '%d ns apart' % (f1['agreements'], f1['round-trip-us'],
                               f1['virtual-clock-delta-ns'],
                               after['virtual-clock-ns'] -
                               before['virtual-clock-ns']))

    def move(self, cpu, dest, via):
        """Ask @via's monitor to move @cpu to @dest; wait until it runs."""
        self.qmp[via].command('aggregate-vcpu-migrate', **{
            'cpu-index': cpu, 'fragment': dest})
        ev = self.qmp[dest].wait_event('AGGREGATE_VCPU_MIGRATED', **{
            'cpu-index': cpu, 'destination': dest})
        self.assertNotEqual(ev['data']['source'], dest)

    def check_refusals(self):
        f0 = self.qmp['f0']
        cases = [
            ({'cpu-index': 2, 'fragment': 'f0'},
             'vCPU 2 does not exist; this VM has vCPUs 0 to 1'),
            ({'cpu-index': -1, 'fragment': 'f0'}, 'vCPU -1 does not exist'),
            ({'cpu-index': 0, 'fragment': 'f9'},
             "fragment 'f9' is not part of this aggregate VM"),
            ({'cpu-index': 1, 'fragment': 'f1'},
             "vCPU 1 already runs on fragment 'f1'"),
        ]
        for args, error in cases:
            reply = f0.execute('aggregate-vcpu-migrate', **args)
            self.assertIn('error', reply, args)
            self.assertIn(error, reply['error']['desc'])
        # A stopped VM keeps its vCPUs where they are.
        f0.command('stop')
        self.qmp['f1'].wait_event('STOP')
        reply = self.qmp['f1'].execute('aggregate-vcpu-migrate', **{
            'cpu-index': 1, 'fragment': 'f0'})
        self.assertIn('the VM is not running (paused)',
                      reply['error']['desc'])
        self.qmp['f1'].command('cont')
        f0.wait_event('RESUME')
        self.assertEqual(self.placement('f0'), {'f0': [0], 'f1': [1]})
        # Agreed again after the cont.
        self.check_clocks_agree()

    def check_in_flight(self):
        """A second request before the first one happened is refused."""
        f0 = self.qmp['f0']
        f0.command('aggregate-vcpu-migrate', **{'cpu-index': 1,
                                                'fragment': 'f0'})
        reply = f0.execute('aggregate-vcpu-migrate', **{'cpu-index': 1,
                                                        'fragment': 'f0'})
        # Unless the move was faster than the monitor's round trip.
        self.assertRegex(reply['error']['desc'],
                         "vCPU 1 is already moving|vCPU 1 already runs on")
        f0.wait_event('AGGREGATE_VCPU_MIGRATED', **{'cpu-index': 1,
                                                    'destination': 'f0'})
        self.move(1, 'f1', 'f0')

    def check_reset_places_back(self):
        """The guest's reboot puts both vCPUs back where they started."""
        for frag in ('f0', 'f1'):
            for cpu, dest in ((0, 'f0'), (1, 'f1')):
                self.qmp[frag].wait_event('AGGREGATE_VCPU_MIGRATED',
                                          timeout=300, **{
                                              'cpu-index': cpu,
                                              'destination': dest})
        # The second boot has begun (and is still running).
        self.wait_console('checksum.n=', 300, after='lifecycle.boot=1')
        for frag in ('f0', 'f1'):
            self.assertEqual(self.placement(frag), {'f0': [0], 'f1': [1]})

    def move_during_checksum(self):
        deadline = time.monotonic() + 400
        moves = 0
        while moves < MIN_MOVES or \
                not console_has(self.console, 'checksum.elapsed_ms='):
            cpu, dest = PLAN[moves % len(PLAN)]
            # Every other request goes to a fragment that may not run it.
            self.move(cpu, dest, 'f%d' % (moves % 2))
            moves += 1
            # Let the guest run on between moves.
            time.sleep(MOVE_GAP_S)
            self.assertLess(time.monotonic(), deadline,
                            'the checksum does not end')
        return moves

    def test_move_vcpus_while_guest_computes(self):
        with Namespaces(2) as ns, \
             tempfile.TemporaryDirectory(prefix='aggvm-func-') as tmp:
            try:
                self.start(ns, tmp)
                self.wait_console('AGGVM-BEGIN', 300)
                self.check_clocks_agree()
                self.check_refusals()
                self.check_in_flight()
                self.wait_console('checksum.n=', 300)
                moves = self.move_during_checksum()
                for cpu, dest in FINAL:
                    if cpu not in self.placement(dest)[dest]:
                        self.move(cpu, dest, dest)
                for frag in ('f0', 'f1'):
                    self.assertEqual(self.placement(frag),
                                     {'f0': [1], 'f1': [0]})
                print('# %d moves during the checksum' % moves)
                self.check_reset_places_back()
                codes = [p.wait(300) for p in reversed(self.procs)]
            finally:
                self.stop()
            with open(self.console, errors='replace') as f:
                console = f.read()
        tail = '\n'.join(console.splitlines()[-30:])
        self.assertEqual(codes, [0, 0], tail)
        # The run with the vCPUs moved, then the one after the reboot.
        second = console.index('AGGVM-BEGIN', console.index('AGGVM-END'))
        for run in (console[:second], console[second:]):
            r, end = parse_results(run)
            for key, value in sorted(r.items()):
                print('# guest: %s=%s' % (key, value))
            self.assertEqual(end, 'AGGVM-END status=ok failed=', tail)
            for cpu in range(2):
                self.assertEqual(r['checksum.cpu%d.sha256' % cpu],
                                 expected_checksum(cpu + 1, 2, CHECKSUM_N))
                # Moved vCPUs take their interrupts: a busy CPU's tick.
                self.assertGreater(int(r['ticks.cpu%d.timer' % cpu]), 10)
            self.assertEqual(r['counter.total'], str(2 * COUNTER_N))
            # One TSC, through the moves and the stop and cont: the
            # second boot's CPU bring-up would find a warp otherwise.
            self.assertIn(r['guest.clocksource'], ('tsc', 'tsc-early'))
            self.assertEqual(r['guest.tsc_complaints'], '0')
        self.assertEqual(r['lifecycle.boot'], '2')


if __name__ == '__main__':
    unittest.main(verbosity=2)
