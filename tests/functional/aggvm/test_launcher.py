#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: the launcher (scripts/aggvm-launch, behind
# 'scripts/aggvm run') starts every fragment from one config file, each
# in its own network namespace, shows the links coming up and the guest
# console, and stops every fragment cleanly when the guest powers off
# or on Ctrl-C; a fragment can also be started over ssh (tested against
# an sshd of our own on 127.0.0.1).  Bad config files get one clear
# error and start nothing.  Needs AGGVM_ROOT (the project checkout; scripts/test sets
# it).
#
# Copyright (c) 2026 The aggvm authors

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggvm_guest import guest_dir, qemu_binary  # noqa: E402

ROOT = os.environ.get('AGGVM_ROOT')

CONFIG = """
[vm]
kernel = "$AGGVM_GUEST_DIR/vmlinuz"
initrd = "$AGGVM_GUEST_DIR/initrd"
append = "console=ttyS0 quiet loglevel=1 aggvm.run=info aggvm.then={then}"
cpu = "qemu64,vendor=GenuineIntel,family=6,model=158"
args = ["-no-reboot"]

[[fragment]]
id = "f0"
vcpus = 1
memory = "256M"

[[fragment]]
id = "f1"
vcpus = 1
memory = "256M"
"""

SSHD = '/usr/sbin/sshd'

SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_key
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
PidFile {dir}/sshd.pid
"""

# f0 in this host's network, f1 started over ssh on this same host.
SSH_CONFIG = """
[vm]
kernel = "$AGGVM_GUEST_DIR/vmlinuz"
initrd = "$AGGVM_GUEST_DIR/initrd"
append = "console=ttyS0 quiet loglevel=1 aggvm.run=info aggvm.then=poweroff"
args = ["-no-reboot"]

[[fragment]]
id = "f0"
memory = "256M"
where = "local"
address = "127.0.0.1:{port0}"

[[fragment]]
id = "f1"
memory = "256M"
where = "ssh://root@127.0.0.1:{ssh_port}"
address = "127.0.0.1:{port1}"
qemu = "{qemu}"
ssh_options = ["-i", "{dir}/client_key", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


BAD_CONFIGS = [
    ('[vm]\nkernel = "k"\n', 'no [[fragment]]'),
    ('[vm]\n[[fragment]]\nid = "f0"\nmemory = "64M"\n',
     '[vm]: kernel is missing'),
    ('[vm]\nkernel = "k"\nsmp = 4\n[[fragment]]\nid = "f0"\n'
     'memory = "64M"\n', '[vm]: unknown key smp'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nmemory = "64MB"\n',
     'fragment "f0": memory = "64MB": expected a size'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nmemory = "64M"\n'
     '[[fragment]]\nid = "f0"\nmemory = "64M"\n',
     'fragment "f0": the id is used twice'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nmemory = "64M"\n'
     'where = "somewhere"\n', 'where = "somewhere": expected'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nmemory = "64M"\n'
     'where = "ssh://host"\n', 'needs an address'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nvcpus = 0\n'
     'memory = "64M"\n', 'no fragment runs a vCPU'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f0"\nmemory = "64M"\n'
     'where = "ssh://a b"\n', 'where = "ssh://a b": expected'),
    ('[vm\n', 'Expected'),
    # QEMU would make f0 the origin: the launcher must not think f1 is.
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f1"\nmemory = "64M"\n'
     '[[fragment]]\nid = "f0"\nmemory = "64M"\n',
     'ids in version order: f0, f1'),
    ('[vm]\nkernel = "k"\n[[fragment]]\nid = "f10"\nmemory = "64M"\n'
     '[[fragment]]\nid = "f2"\nmemory = "64M"\n',
     'ids in version order: f2, f10'),
]


@unittest.skipUnless(ROOT, 'AGGVM_ROOT is not set (run through scripts/test)')
class Launcher(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix='aggvm-launch-')
        self.env = dict(os.environ, AGGVM_QEMU=qemu_binary(),
                        AGGVM_GUEST_DIR=guest_dir())

    def tearDown(self):
        self.tmp.cleanup()

    def config(self, text, name='vm.toml'):
        path = os.path.join(self.tmp.name, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def launcher(self, *args):
        return [sys.executable, os.path.join(ROOT, 'scripts', 'aggvm-launch')
                ] + list(args)

    def test_bad_configs(self):
        for text, error in BAD_CONFIGS:
            proc = subprocess.run(self.launcher(self.config(text), '--check'),
                                  env=self.env, capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(proc.returncode, 2, text)
            errors = proc.stderr.splitlines()
            self.assertEqual(len(errors), 1, proc.stderr)
            self.assertTrue(errors[0].startswith('aggvm: error: '))
            self.assertIn(error, errors[0])

    def test_check_prints_one_command_per_fragment(self):
        proc = subprocess.run(
            self.launcher(self.config(CONFIG.format(then='poweroff')),
                          '--check'),
            env=self.env, capture_output=True, text=True, timeout=60,
            check=True)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 2)
        for i, line in enumerate(lines):
            self.assertIn('-smp 2,sockets=2', line)
            self.assertIn('aggregate-fragment,id=f1,address=10.77.0.2:7000,'
                          'cpus=1,mem=256M', line)
            self.assertTrue(line.endswith('fragment=f%d' % i), line)

    @unittest.skipUnless(os.geteuid() == 0, 'needs root')
    def test_run_until_poweroff(self):
        run_dir = os.path.join(self.tmp.name, 'run')
        proc = subprocess.run(
            self.launcher(self.config(CONFIG.format(then='poweroff')),
                          '--run-dir', run_dir),
            env=self.env, capture_output=True, text=True, timeout=400)
        print(proc.stdout)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = proc.stdout
        self.assertIn('QMP %s/f1.qmp, log %s/f1.log' % (run_dir, run_dir),
                      out)
        self.assertIn('aggvm: f1: 1 of 1 links up', out)
        self.assertIn('aggvm: all 2 fragments connected', out)
        # The console is copied: the guest saw both NUMA nodes.
        self.assertIn('AGGVM info.nr_numa_nodes=2', out)
        self.assertIn('AGGVM-END status=ok', out)
        self.assertIn('fragments exited with f0=0, f1=0', out)

    @unittest.skipUnless(os.geteuid() == 0, 'needs root')
    def test_ctrl_c_stops_every_fragment(self):
        run_dir = os.path.join(self.tmp.name, 'run')
        log = open(os.path.join(self.tmp.name, 'out'), 'w+')
        proc = subprocess.Popen(
            self.launcher(self.config(CONFIG.format(then='shell')),
                          '--run-dir', run_dir),
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            log.seek(0)
            if 'AGGVM-END' in log.read():
                break
            self.assertIsNone(proc.poll())
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            # The launcher's own bounds (quit, SIGTERM) come well before.
            code = proc.wait(180)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.seek(0)
        out = log.read()
        log.close()
        print(out)
        for f in ('f0.log', 'f1.log'):
            with open(os.path.join(run_dir, f), errors='replace') as flog:
                print('%s:\n%s' % (f, flog.read()[-4000:]))
        self.assertEqual(code, 0)
        self.assertIn('aggvm: stopping: quit on f0', out)
        self.assertIn('fragments exited with f0=0, f1=0', out)
        # Its namespaces are gone.
        netns = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                               text=True).stdout
        self.assertNotIn('aggvm-run%d-' % proc.pid, netns)

    def start_sshd(self):
        """An sshd on 127.0.0.1 that lets our throwaway key in as root."""
        d = os.path.join(self.tmp.name, 'ssh')
        os.mkdir(d)
        for key in ('host_key', 'client_key'):
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                            '-f', os.path.join(d, key)], check=True)
        shutil.copy(os.path.join(d, 'client_key.pub'),
                    os.path.join(d, 'authorized_keys'))
        port = free_port()
        with open(os.path.join(d, 'sshd_config'), 'w') as f:
            f.write(SSHD_CONFIG.format(port=port, dir=d))
        os.makedirs('/run/sshd', exist_ok=True)    # privilege separation
        sshd = subprocess.Popen([SSHD, '-D', '-e', '-f',
                                 os.path.join(d, 'sshd_config')],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(sshd.wait)
        self.addCleanup(sshd.terminate)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), 1).close()
                return d, port
            except OSError:
                self.assertIsNone(sshd.poll(), 'sshd did not start')
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)

    @unittest.skipUnless(os.geteuid() == 0 and os.path.exists(SSHD),
                         'needs root and sshd (openssh-server)')
    def test_fragment_over_ssh(self):
        d, ssh_port = self.start_sshd()
        config = self.config(SSH_CONFIG.format(
            port0=free_port(), port1=free_port(), ssh_port=ssh_port,
            qemu=qemu_binary(), dir=d))
        run_dir = os.path.join(self.tmp.name, 'run')
        proc = subprocess.run(self.launcher(config, '--run-dir', run_dir),
                              env=self.env, capture_output=True, text=True,
                              timeout=400)
        print(proc.stdout)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        out = proc.stdout
        self.assertIn('aggvm: f1 (ssh://root@127.0.0.1:%d' % ssh_port, out)
        # Its QMP socket was forwarded back: the launcher saw its link.
        self.assertIn('aggvm: f1: 1 of 1 links up', out)
        self.assertIn('AGGVM info.nr_numa_nodes=2', out)
        self.assertIn('fragments exited with f0=0, f1=0', out)


if __name__ == '__main__':
    unittest.main(verbosity=2)
