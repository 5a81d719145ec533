#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm functional test: the set-up scripts stop on bad input with one
# clear "aggvm: error:" line naming the cause, and change nothing they
# should not.  Needs AGGVM_ROOT (the project checkout; scripts/test
# sets it).
#
# Copyright (c) 2026 The aggvm authors

import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.environ.get('AGGVM_ROOT')
CACHE = os.environ.get('AGGVM_CACHE', '/var/cache/aggvm')
TARBALL = 'qemu_10.0.2+ds.orig.tar.xz'


def run(script, env, root=None):
    root = root or ROOT
    proc = subprocess.run([os.path.join(root, 'scripts', script)],
                          env=dict(os.environ, **env),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=300)
    errors = [line for line in proc.stderr.decode().splitlines()
              if line.startswith('aggvm: error:')]
    return proc.returncode, errors


@unittest.skipUnless(ROOT, 'AGGVM_ROOT is not set (run through scripts/test)')
class ScriptsBadInput(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='aggvm-scripts-')

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_wrong_tarball_hash(self):
        cache = os.path.join(self.tmp, 'cache')
        os.mkdir(cache)
        bad = os.path.join(cache, TARBALL)
        with open(bad, 'wb') as f:
            f.write(b'not the QEMU tarball\n')
        rc, errors = run('fetch-qemu', {'AGGVM_CACHE': cache})
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('sha256 mismatch for ' + TARBALL, errors[0])
        # The bad file is moved aside, never used.
        self.assertFalse(os.path.exists(bad))
        self.assertTrue(os.path.exists(bad + '.bad'))

    def copy_repo(self):
        repo = os.path.join(self.tmp, 'repo')
        os.mkdir(repo)
        for name in ('scripts', 'patches'):
            shutil.copytree(os.path.join(ROOT, name),
                            os.path.join(repo, name))
        return repo

    def prepare(self, repo):
        return run('prepare-qemu', {'AGGVM_BUILD':
                                    os.path.join(self.tmp, 'build')}, repo)

    def test_patch_that_does_not_apply(self):
        repo = self.copy_repo()
        with open(os.path.join(repo, 'patches', '9999-broken.patch'),
                  'w') as f:
            f.write('Why: a test.\n\n--- a/VERSION\n+++ b/VERSION\n'
                    '@@ -1 +1 @@\n-0.0.0\n+0.0.1\n')
        with open(os.path.join(repo, 'patches', 'series'), 'a') as f:
            f.write('9999-broken.patch\n')
        rc, errors = self.prepare(repo)
        self.assertNotEqual(rc, 0)
        self.assertEqual(errors, ['aggvm: error: patch 9999-broken.patch '
                                  'does not apply cleanly to QEMU 10.0.2'])

    def test_overlay_must_not_replace_qemu_files(self):
        repo = self.copy_repo()
        os.makedirs(os.path.join(repo, 'hw', 'i386'))
        with open(os.path.join(repo, 'hw', 'i386', 'pc_q35.c'), 'w') as f:
            f.write('/* replaced */\n')
        rc, errors = self.prepare(repo)
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('overlay file hw/i386/pc_q35.c would replace '
                      "QEMU's own file", errors[0])

    def test_missing_package(self):
        rc, errors = run('install-deps', {
            'AGGVM_EXTRA_PACKAGES': 'aggvm-no-such-package',
            'AGGVM_CACHE': os.path.join(self.tmp, 'cache')})
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn('package aggvm-no-such-package is not in Debian',
                      errors[0])


if __name__ == '__main__':
    unittest.main(verbosity=2)
