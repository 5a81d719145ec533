# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm: start the fragments of an aggregate machine on this host, each
# in its own network namespace (joined by a bridge in a "switch"
# namespace), and talk to them over qtest and QMP unix sockets.
#
# Copyright (c) 2026 The aggvm authors

import json
import os
import socket
import subprocess
import tempfile
import time


# The one place the namespaces are made (the qtests and bench/dsm use it
# too): see its header.
NETNS_HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'aggvm-netns')


class Namespaces:
    """n fragment namespaces 10.77.0.1..n on one bridge."""

    def __init__(self, n, prefix='aggvm-%d' % os.getpid()):
        self.n = n
        self.prefix = prefix
        self.switch = prefix + '-sw'
        self.names = ['%s-f%d' % (prefix, i) for i in range(n)]
        self.addrs = ['10.77.0.%d' % (i + 1) for i in range(n)]

    def __enter__(self):
        proc = subprocess.run([NETNS_HELPER, 'up', self.prefix, str(self.n)],
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip() or
                               'aggvm-netns up %s failed' % self.prefix)
        return self

    def __exit__(self, *exc):
        subprocess.run([NETNS_HELPER, 'down', self.prefix],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Fragment:
    """One QEMU process under -accel qtest, with qtest and QMP sockets."""

    def __init__(self, qemu, args, netns, workdir, name):
        self.name = name
        self.qtest_path = os.path.join(workdir, name + '.qtest')
        self.qmp_path = os.path.join(workdir, name + '.qmp')
        self.log_path = os.path.join(workdir, name + '.log')
        cmd = ['ip', 'netns', 'exec', netns] if netns else []
        cmd += [qemu] + args + [
            '-accel', 'qtest', '-display', 'none',
            '-qtest', 'unix:%s,server=on,wait=off' % self.qtest_path,
            '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path]
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        self.qtest = self._connect(self.qtest_path).makefile('rw')
        self.qmp = self._connect(self.qmp_path).makefile('rw')
        self.qmp.readline()
        self.command('qmp_capabilities')

    def _connect(self, path, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                return s
            except OSError:
                s.close()
                if self.proc.poll() is not None or \
                   time.monotonic() > deadline:
                    raise RuntimeError('%s did not start: %s' %
                                       (self.name, self.stderr()))
                time.sleep(0.05)

    def stderr(self):
        with open(self.log_path) as f:
            return f.read()

    def qtest_cmd(self, line):
        self.qtest.write(line + '\n')
        self.qtest.flush()
        while True:
            reply = self.qtest.readline().strip()
            if not reply:
                raise RuntimeError('%s: qtest connection closed' % self.name)
            if not reply.startswith('IRQ'):
                break
        if not reply.startswith('OK'):
            raise RuntimeError('%s: %s -> %s' % (self.name, line, reply))
        return reply

    def readl(self, addr):
        return int(self.qtest_cmd('readl 0x%x' % addr).split()[1], 16)

    def writel(self, addr, value):
        self.qtest_cmd('writel 0x%x 0x%x' % (addr, value))

    def command(self, name, **args):
        self.qmp.write(json.dumps({'execute': name, 'arguments': args}) +
                       '\n')
        self.qmp.flush()
        while True:
            rsp = json.loads(self.qmp.readline())
            if 'return' in rsp or 'error' in rsp:
                break
        if 'error' in rsp:
            raise RuntimeError('%s: %s: %s' % (self.name, name,
                                               rsp['error']['desc']))
        return rsp['return']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def qmp_query(path, command, timeout=10):
    """Run one QMP @command on the monitor socket at @path."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile('rw')
    f.readline()
    for cmd in ('qmp_capabilities', command):
        f.write(json.dumps({'execute': cmd}) + '\n')
        f.flush()
        rsp = {}
        while 'return' not in rsp and 'error' not in rsp:
            rsp = json.loads(f.readline())         # skip events
    s.close()
    if 'error' in rsp:
        raise RuntimeError('%s: %s' % (command, rsp['error']['desc']))
    return rsp['return']


def aggregate_args(n, addrs, mem_mb, port=7000):
    """Command line shared by every fragment, but for fragment=."""
    args = ['-machine', 'aggregate,connect-timeout=30',
            '-m', '%dM' % (mem_mb * n), '-smp', str(n), '-nodefaults']
    for i in range(n):
        args += ['-object', 'aggregate-fragment,id=f%d,address=%s:%d,'
                 'cpus=%d,mem=%dM' % (i, addrs[i], port, i, mem_mb)]
    return args


def workdir():
    return tempfile.TemporaryDirectory(prefix='aggvm-')


class QMPClient:
    """A QMP unix socket; keeps the events that arrive between replies."""

    def __init__(self, path, proc, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError('no QMP monitor at ' + path)
                time.sleep(0.05)
        self.file = self.sock.makefile('rw')
        self.events = []
        self.file.readline()
        self.execute('qmp_capabilities')

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        line = self.file.readline()
        if not line:
            raise RuntimeError('QMP connection closed')
        return json.loads(line)

    def execute(self, name, timeout=60, **args):
        """The reply: {'return': ...} or {'error': ...}."""
        self.file.write(json.dumps({'execute': name, 'arguments': args}) +
                        '\n')
        self.file.flush()
        while True:
            msg = self._read(timeout)
            if 'event' in msg:
                self.events.append(msg)
            else:
                return msg

    def command(self, name, **args):
        reply = self.execute(name, **args)
        if 'error' in reply:
            raise RuntimeError('%s: %s' % (name, reply['error']['desc']))
        return reply['return']

    def wait_event(self, name, timeout=60, **data):
        """The first event @name whose data has the items of @data."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev['event'] == name and \
                   all(ev['data'].get(k) == v for k, v in data.items()):
                    self.events.remove(ev)
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no %s %s event' % (name, data))
            self.events.append(self._read(left))

    def close(self):
        self.sock.close()
