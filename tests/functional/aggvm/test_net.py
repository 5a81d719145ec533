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
# traffic.  Then the guest powers off and every fragment exits 0.  A
# vhost backend is refused at start-up.
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
from aggvm_fragments import Namespaces  # noqa: E402
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


def netdev(vhost='off'):
    return ('tap,id=n0,ifname=%s,script=no,downscript=no,queues=2,'
            'vhost=%s' % (TAP, vhost))


def guest_args(ns, extra_append=''):
    gdir = guest_dir()
    append = ('console=ttyS0 quiet loglevel=1 panic=-1 aggvm.run=netserve '
              'aggvm.then=poweroff aggvm.netserve_mb=%d %s'
              % (BLOB_MB, extra_append))
    args = ['-machine', 'aggregate,connect-timeout=60',
            '-accel', 'aggregate', '-m', '%dM' % (2 * NODE_MB),
            '-smp', '2,sockets=2,cores=1', '-cpu', CPU_MODEL,
            '-nodefaults', '-display', 'none',
            '-kernel', os.path.join(gdir, 'vmlinuz'),
            '-initrd', os.path.join(gdir, 'initrd'), '-append', append,
            '-device', 'virtio-net-pci,netdev=n0,mq=on,vectors=6']
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

    def wait_console(self, console, text, procs, timeout):
        deadline = time.monotonic() + timeout
        while True:
            with open(console, errors='replace') as f:
                text_now = f.read()
            if text in text_now:
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

    def test_http_two_queues(self):
        with Namespaces(2, prefix='aggvm-n%d' % os.getpid()) as ns, \
             tempfile.TemporaryDirectory(prefix='aggvm-net-') as tmp:
            add_tap(ns.names[0])
            console = os.path.join(tmp, 'console.log')
            open(console, 'w').close()
            procs, logs = [], []
            try:
                for i in (1, 0):
                    log = open(os.path.join(tmp, 'f%d.log' % i), 'w+')
                    logs.append(log)
                    procs.append(subprocess.Popen(
                        ['ip', 'netns', 'exec', ns.names[i], qemu_binary()] +
                        guest_args(ns) +
                        ['-netdev', netdev(), '-machine', 'fragment=f%d' % i,
                         '-serial', 'file:' + console if i == 0 else 'null'],
                        stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT))
                self.run_traffic(ns, console, procs)
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

    def run_traffic(self, ns, console, procs):
        text = self.wait_console(console, 'netserve.ready=1', procs,
                                 BOOT_TIMEOUT)
        want, _ = parse_results(text)
        self.assertEqual(want['netserve.rx_queues'], '2')
        self.assertEqual(want['netserve.tx_queues'], '2')
        origin_ns = ns.names[0]

        got = self.client(origin_ns, 'get', *SMALL, '--concurrency', '8',
                          '--requests', '128')
        self.assertEqual(got['errors'], [])
        for name in SMALL:
            self.assertEqual(got['sha256'][name],
                             [want['netserve.%s.sha256' % name]], name)
        print('# %d concurrent GETs: %.0f requests/s'
              % (got['requests'], got['requests_per_s']))

        got = self.client(origin_ns, 'fetch', 'blob')
        self.assertEqual(got['len'], BLOB_MB << 20)
        self.assertEqual(got['sha256'], want['netserve.blob_sha256'])
        print('# bulk from the guest: %.1f MB/s' % got['mb_per_s'])

        got = self.client(origin_ns, 'put', '--mb', str(UPLOAD_MB))
        self.assertEqual(got['answer'],
                         'len=%d sha256=%s' % (got['len'], got['sha256']))
        print('# bulk to the guest: %.1f MB/s' % got['mb_per_s'])

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
