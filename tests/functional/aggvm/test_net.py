#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: a multi-queue virtio-net across two fragments.
# Two fragments, one vCPU each, in their own network namespaces; the
# NIC (virtio-net-pci, mq=on, 2 queue pairs) and its backend (a
# multi-queue tap in the origin's namespace) are the origin's.  The
# guest serves HTTP (guest command netserve); a client in the origin's
# namespace makes many concurrent requests, fetches a bulk file and
# uploads one, and every body is checked against the guest's sha256.
# Both receive queues must take interrupts, the CPU that takes queue
# i's being CPU i (Linux's affinity), so both fragments' vCPUs handle
# traffic.  Then the guest powers off and every fragment exits 0.
#
# Three ways: queue pair 1 processed on fragment f1, which runs vCPU 1
# (the default, pin-net-queues=on), with plain multi-queue and with
# RSS; and every queue on the origin (pin-net-queues=off).  The bulk
# transfers run in the first only.  With
# pinning, query-aggregate-net must show pair 1 served on f1 with its
# packets counted there, and its ring pages must stay on f1: at most a
# few DSM faults on them over a whole traffic round.  The guest also
# changes the number of queue pairs in use (control queue) to 1 and
# back to 2, with traffic checked after each change.  A vhost backend
# is refused at start-up.
#
# Copyright (c) 2026 The aggvm authors

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from aggvm_fragments import Namespaces, QMPClient  # noqa: E402
from aggvm_guest import (CPU_MODEL, guest_dir, parse_results,  # noqa: E402
                         qemu_binary)

NODE_MB = 256
TAP = 'aggvmtap'
HOST_ADDR = '10.0.3.1/24'
GUEST_ADDR = '10.0.3.2'
BLOB_MB = 8
UPLOAD_MB = 4
SMALL = ['s%d' % i for i in range(16)]
BOOT_TIMEOUT = 600
# DSM faults on the pinned pair's ring pages during one traffic round:
# the rings stay on f1, except when the guest's CPU 0 uses the pair (a
# socket keeps its transmit queue while the process moves between
# CPUs), so at most a few, against hundreds of packets.
RING_FAULT_SLACK = 8


def netdev(vhost='off'):
    return ('tap,id=n0,ifname=%s,script=no,downscript=no,queues=2,'
            'vhost=%s' % (TAP, vhost))


def guest_args(ns, extra_append='', pin=True, device_opts=''):
    gdir = guest_dir()
    append = ('console=ttyS0 quiet loglevel=1 panic=-1 aggvm.run=netserve '
              'aggvm.then=poweroff aggvm.netserve_mb=%d %s'
              % (BLOB_MB, extra_append))
    args = ['-machine', 'aggregate,connect-timeout=60,pin-net-queues=%s'
            % ('on' if pin else 'off'),
            '-accel', 'aggregate', '-m', '%dM' % (2 * NODE_MB),
            '-smp', '2,sockets=2,cores=1', '-cpu', CPU_MODEL,
            '-nodefaults', '-display', 'none',
            '-kernel', os.path.join(gdir, 'vmlinuz'),
            '-initrd', os.path.join(gdir, 'initrd'), '-append', append,
            '-device', 'virtio-net-pci,netdev=n0,mq=on,vectors=6' +
            device_opts]
    for i in range(2):
        args += ['-object', 'aggregate-fragment,id=f%d,address=%s:7000,'
                 'cpus=%d,mem=%dM' % (i, ns.addrs[i], i, NODE_MB)]
    return args


def add_tap(ns_name):
    for cmd in (['tuntap', 'add', 'dev', TAP, 'mode', 'tap', 'multi_queue'],
                ['addr', 'add', HOST_ADDR, 'dev', TAP],
                ['link', 'set', TAP, 'up']):
        subprocess.run(['ip', '-n', ns_name] + cmd, check=True)


@unittest.skipUnless(os.geteuid() == 0, 'needs root (netns, tap, uffd)')
class MultiQueueNet(unittest.TestCase):

    def client(self, ns_name, command, *args):
        """Run aggvm_httpclient.py COMMAND in @ns_name; its JSON."""
        out = subprocess.run(
            ['ip', 'netns', 'exec', ns_name, sys.executable,
             os.path.join(HERE, 'aggvm_httpclient.py'), command,
             'http://%s' % GUEST_ADDR] + list(args),
            capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def wait_console(self, console, text, procs, timeout, count=1):
        deadline = time.monotonic() + timeout
        while True:
            with open(console, errors='replace') as f:
                text_now = f.read()
            if text_now.count(text) >= count:
                return text_now
            if time.monotonic() > deadline or \
               any(p.poll() is not None for p in procs):
                self.fail('no "%s" on the console:\n%s'
                          % (text, '\n'.join(text_now.splitlines()[-30:])))
            time.sleep(0.2)

    def test_vhost_refused(self):
        with Namespaces(2, prefix='aggvm-nv%d' % os.getpid()) as ns:
            out = subprocess.run(
                ['ip', 'netns', 'exec', ns.names[0], qemu_binary()] +
                guest_args(ns) + ['-netdev', netdev(vhost='on'),
                                  '-machine', 'fragment=f0'],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn('vhost', out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1,
                         out.stderr)

    def test_http_pinned_queues(self):
        self.run_guest(pin=True)

    # The next two skip the bulk transfers, which take the longest; this
    # one reboots the guest and serves again (device reset, hand-over
    # again).
    def test_http_pinned_queues_rss(self):
        self.run_guest(pin=True, device_opts=',rss=on', bulk=False,
                       reboot=True)

    def test_http_queues_on_origin(self):
        self.run_guest(pin=False, bulk=False)

    def run_guest(self, pin, device_opts='', bulk=True, reboot=False):
        with Namespaces(2, prefix='aggvm-n%d' % os.getpid()) as ns, \
             tempfile.TemporaryDirectory(prefix='aggvm-net-') as tmp:
            add_tap(ns.names[0])
            console = os.path.join(tmp, 'console.log')
            open(console, 'w').close()
            procs, logs, self.qmp = [], [], {}
            try:
                for i in (1, 0):
                    log = open(os.path.join(tmp, 'f%d.log' % i), 'w+')
                    logs.append(log)
                    qmp = os.path.join(tmp, 'f%d.qmp' % i)
                    procs.append(subprocess.Popen(
                        ['ip', 'netns', 'exec', ns.names[i], qemu_binary()] +
                        guest_args(ns, pin=pin, device_opts=device_opts,
                                   extra_append='aggvm.then=reboot-once'
                                   if reboot else '') +
                        ['-netdev', netdev(), '-machine', 'fragment=f%d' % i,
                         '-qmp', 'unix:%s,server=on,wait=off' % qmp,
                         '-serial', 'file:' + console if i == 0 else 'null'],
                        stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT))
                    self.qmp['f%d' % i] = QMPClient(qmp, procs[-1])
                self.run_traffic(ns, console, procs, pin, bulk)
                if reboot:
                    self.run_after_reboot(ns, console, procs, pin)
                for q in self.qmp.values():
                    q.close()
                for p in procs:
                    self.assertEqual(p.wait(120), 0)
                with open(console, errors='replace') as f:
                    results, end = parse_results(f.read())
                self.assertEqual(end, 'AGGVM-END status=ok failed=')
                self.check_queues(results)
            finally:
                for log, p in zip(logs, procs):
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                    log.seek(0)
                    print('# fragment log: ' + log.read())
                    log.close()

    def pairs(self, frag):
        """query-aggregate-net on @frag: {pair: info}."""
        return {p['pair']: p
                for p in self.qmp[frag].command('query-aggregate-net')}

    def check_placement(self, pin):
        f0, f1 = self.pairs('f0'), self.pairs('f1')
        print('# query-aggregate-net: f0 %s f1 %s' % (f0, f1))
        self.assertEqual(sorted(f0), [0, 1])
        self.assertTrue(f0[0]['here'])
        self.assertEqual(f0[0]['fragment'], 'f0')
        self.assertFalse(f1[0]['here'])
        self.assertNotIn('fragment', f1[0])
        self.assertEqual(f0[1]['here'], not pin)
        self.assertEqual(f0[1]['fragment'], 'f1' if pin else 'f0')
        self.assertEqual(f1[1]['here'], pin)
        return f0, f1

    def traffic_round(self, origin_ns, want, requests=64):
        got = self.client(origin_ns, 'get', *SMALL, '--concurrency', '8',
                          '--requests', str(requests))
        self.assertEqual(got['errors'], [])
        for name in SMALL:
            self.assertEqual(got['sha256'][name],
                             [want['netserve.%s.sha256' % name]], name)
        return got

    def run_after_reboot(self, ns, console, procs, pin):
        """The guest rebooted: the device was reset and started again."""
        text = self.wait_console(console, 'netserve.ready=1', procs,
                                 BOOT_TIMEOUT, count=2)
        want, _ = parse_results(text[text.index('lifecycle.boot=1'):])
        self.assertEqual(want['netserve.ready'], '1')
        origin_ns = ns.names[0]
        self.check_placement(pin)
        self.check_ring_faults(origin_ns, want, pin)
        got = self.client(origin_ns, 'fetch', 'cgi-bin/stop')
        self.assertEqual(got['len'], len('stopping\n'))

    def bulk(self, origin_ns, want):
        got = self.client(origin_ns, 'fetch', 'blob')
        self.assertEqual(got['len'], BLOB_MB << 20)
        self.assertEqual(got['sha256'], want['netserve.blob_sha256'])
        print('# bulk from the guest: %.1f MB/s' % got['mb_per_s'])

        got = self.client(origin_ns, 'put', '--mb', str(UPLOAD_MB))
        self.assertEqual(got['answer'],
                         'len=%d sha256=%s' % (got['len'], got['sha256']))
        print('# bulk to the guest: %.1f MB/s' % got['mb_per_s'])

    def check_ring_faults(self, origin_ns, want, pin):
        """One more round: do pair 1's rings stay where it is served?"""
        serving = 'f1' if pin else 'f0'
        before = self.pairs(serving)[1]
        self.traffic_round(origin_ns, want)
        after = self.pairs(serving)[1]
        faults = after['ring-faults'] - before['ring-faults']
        packets = (after['rx-packets'] + after['tx-packets'] -
                   before['rx-packets'] - before['tx-packets'])
        print('# pair 1 on %s, one round: %d ring faults, %d packets'
              % (serving, faults, packets))
        if pin:
            self.assertGreater(packets, 100, after)
            self.assertLessEqual(faults, RING_FAULT_SLACK + packets // 20,
                                 (before, after))
        else:
            # Written by vCPU 1 on f1, read and written here: they move.
            self.assertGreater(faults, 0, after)

    def set_queues(self, origin_ns, n):
        got = self.client(origin_ns, 'fetch', 'cgi-bin/queues?%d' % n,
                          '--text')
        self.assertEqual(got['text'].split(), [str(n), '2'], got)

    def run_traffic(self, ns, console, procs, pin, bulk):
        text = self.wait_console(console, 'netserve.ready=1', procs,
                                 BOOT_TIMEOUT)
        want, _ = parse_results(text)
        self.assertEqual(want['netserve.rx_queues'], '2')
        self.assertEqual(want['netserve.tx_queues'], '2')
        origin_ns = ns.names[0]
        self.check_placement(pin)

        got = self.traffic_round(origin_ns, want, requests=128)
        print('# %d concurrent GETs: %.0f requests/s'
              % (got['requests'], got['requests_per_s']))

        if bulk:
            self.bulk(origin_ns, want)

        self.check_ring_faults(origin_ns, want, pin)

        # The driver changes the number of pairs in use: 1, then 2.
        for n in (1, 2):
            self.set_queues(origin_ns, n)
            self.traffic_round(origin_ns, want)
        self.check_placement(pin)

        got = self.client(origin_ns, 'fetch', 'cgi-bin/stop')
        self.assertEqual(got['len'], len('stopping\n'))

    def check_queues(self, results):
        irqs = {k[len('netserve.irq.'):]: [int(x) for x in v.split(',')]
                for k, v in results.items()
                if k.startswith('netserve.irq.')}
        print('# interrupts per queue, per CPU: %s' % irqs)
        for q in (0, 1):
            per_cpu = irqs['input.%d' % q]
            # Linux gives queue pair i to CPU i (once the driver has set
            # the affinity: an interrupt or two may come before).
            self.assertGreater(per_cpu[q], 0, irqs)
            self.assertGreaterEqual(per_cpu[q], 0.9 * sum(per_cpu), irqs)


if __name__ == '__main__':
    unittest.main()
