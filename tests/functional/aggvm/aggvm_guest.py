# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional tests: boot the project's test guest and read what it
# reports.
#
# Copyright (c) 2026 The aggvm authors
#
# The guest (scripts/build-guest) runs the commands named by aggvm.run=
# and prints "AGGVM cmd.key=value" lines between AGGVM-BEGIN and
# AGGVM-END on its serial console, then powers off.  GuestRun starts
# QEMU with the console in a file, waits for QEMU to exit (bounded by a
# timeout) and parses those lines into a dict.

import hashlib
import os
import subprocess
import tempfile

# A CPU model whose TSC Linux trusts (Intel family 6: constant_tsc), so
# the guest keeps the TSC as its clock when the fragments agree on it;
# TCG offers no invariant-TSC flag, and with the default model Linux
# uses the HPET even under stock single-process TCG.
CPU_MODEL = 'qemu64,vendor=GenuineIntel,family=6,model=158'


def guest_dir():
    return os.environ.get('AGGVM_GUEST_DIR', '/var/cache/aggvm/guest')


def guest_612_dir():
    """The 6.12 guest (scripts/build-guest with AGGVM_GUEST_KERNEL=6.12)."""
    return os.environ.get('AGGVM_GUEST_612_DIR',
                          guest_dir().rstrip('/') + '-6.12')


def qemu_binary():
    path = os.environ.get('AGGVM_QEMU')
    if not path:
        raise RuntimeError('AGGVM_QEMU is not set (run through meson test)')
    return path


def expected_checksum(first, step, last):
    """sha256 of what busybox 'seq FIRST STEP LAST' prints."""
    data = ''.join('%d\n' % i for i in range(first, last + 1, step))
    return hashlib.sha256(data.encode()).hexdigest()


def parse_results(console):
    """Return (results dict, end line) from the console text."""
    results = {}
    end = None
    begun = False
    for line in console.splitlines():
        line = line.strip('\r')
        if line == 'AGGVM-BEGIN':
            begun = True
        elif line.startswith('AGGVM-END'):
            end = line
        elif begun and line.startswith('AGGVM ') and '=' in line:
            key, value = line[len('AGGVM '):].split('=', 1)
            results[key] = value
    return results, end


class GuestResult:
    def __init__(self, returncode, console, results, end):
        self.returncode = returncode
        self.console = console
        self.results = results
        self.end = end

    def tail(self, lines=40):
        return '\n'.join(self.console.splitlines()[-lines:])


class GuestRun:
    """One QEMU process booting the test guest."""

    def __init__(self, qemu_args, run, guest_args=None, timeout=600):
        self.qemu_args = list(qemu_args)
        self.run = run
        self.guest_args = dict(guest_args or {})
        self.timeout = timeout

    def cmdline(self):
        words = ['console=ttyS0', 'quiet', 'loglevel=1', 'panic=-1',
                 'aggvm.run=' + ','.join(self.run)]
        words += ['aggvm.%s=%s' % kv for kv in self.guest_args.items()]
        return ' '.join(words)

    def start(self):
        gdir = guest_dir()
        for name in ('vmlinuz', 'initrd'):
            if not os.path.exists(os.path.join(gdir, name)):
                raise RuntimeError('%s/%s is missing: run scripts/build-guest'
                                   % (gdir, name))
        with tempfile.TemporaryDirectory(prefix='aggvm-func-') as tmp:
            log = os.path.join(tmp, 'console.log')
            args = [qemu_binary(), '-nodefaults', '-display', 'none',
                    '-no-reboot', '-serial', 'file:' + log,
                    '-kernel', os.path.join(gdir, 'vmlinuz'),
                    '-initrd', os.path.join(gdir, 'initrd'),
                    '-append', self.cmdline()] + self.qemu_args
            print('# ' + ' '.join(args), flush=True)
            try:
                proc = subprocess.run(args, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT,
                                      timeout=self.timeout)
                rc, out = proc.returncode, proc.stdout.decode(errors='replace')
            except subprocess.TimeoutExpired as e:
                rc = None
                out = (e.stdout or b'').decode(errors='replace')
                out += '\n[aggvm: QEMU killed after %d s]' % self.timeout
            with open(log, errors='replace') as f:
                console = f.read()
        results, end = parse_results(console)
        return GuestResult(rc, out + console, results, end)
