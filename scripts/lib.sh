# SPDX-License-Identifier: GPL-2.0-or-later
#
# aggvm: settings and helpers shared by the project scripts.
#
# Copyright (c) 2026 The aggvm authors
#
# Everything the scripts fetch or build outside the clone lives under
# $AGGVM_CACHE (tarball, pristine source, ccache, guest image), so a
# fresh clone on a machine that built before is fast.  The patched QEMU
# tree and its build directory live in $AGGVM_BUILD inside the clone.

set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

AGGVM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AGGVM_CACHE=${AGGVM_CACHE:-/var/cache/aggvm}
AGGVM_BUILD=${AGGVM_BUILD:-$AGGVM_ROOT/build}

QEMU_VERSION=10.0.2
QEMU_DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
QEMU_TARBALL=qemu_10.0.2+ds.orig.tar.xz
QEMU_SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
QEMU_SRC=$AGGVM_BUILD/qemu-$QEMU_VERSION
QEMU_BUILD=$QEMU_SRC/build
QEMU_SYSTEM=$QEMU_BUILD/qemu-system-x86_64

# The test guest: Debian bookworm's kernel, pinned (6.1, in
# $AGGVM_GUEST_DIR, default $AGGVM_CACHE/guest), or with
# AGGVM_GUEST_KERNEL=6.12 bookworm-backports' 6.12 series (in
# $AGGVM_GUEST_612_DIR, default $AGGVM_CACHE/guest-6.12), whose kernel
# patches its own code at run time where 6.1's test runs end first.
GUEST_KERNELS=(6.1 6.12)
case ${AGGVM_GUEST_KERNEL:-6.1} in
6.1)
    GUEST_KERNEL_PKG=linux-image-6.1.0-50-amd64
    GUEST_KERNEL_VERSION=6.1.176-1
    GUEST_KERNEL_RELEASE=6.1.0-50-amd64
    GUEST_DIR=${AGGVM_GUEST_DIR:-$AGGVM_CACHE/guest}
    ;;
6.12)
    GUEST_KERNEL_PKG=linux-image-6.12.95+deb12-amd64
    GUEST_KERNEL_VERSION=6.12.95-1~bpo12+1
    GUEST_KERNEL_RELEASE=6.12.95+deb12-amd64
    GUEST_DIR=${AGGVM_GUEST_612_DIR:-$AGGVM_CACHE/guest-6.12}
    ;;
*)
    echo "aggvm: error: AGGVM_GUEST_KERNEL=$AGGVM_GUEST_KERNEL:" \
         "the test guest has kernels ${GUEST_KERNELS[*]}" >&2
    exit 1
    ;;
esac
GUEST_612_DIR=${AGGVM_GUEST_612_DIR:-$AGGVM_CACHE/guest-6.12}

# ccache: share hits between clones at different paths.
export CCACHE_DIR=${CCACHE_DIR:-$AGGVM_CACHE/ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$AGGVM_BUILD}
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

die()
{
    echo "aggvm: error: $*" >&2
    exit 1
}

note()
{
    echo "aggvm: $*" >&2
}

need_root()
{
    [ "$(id -u)" = 0 ] || die "$1 needs root (run as root or with sudo)"
}

# Print the seconds elapsed since $1 (a value of $SECONDS).
elapsed()
{
    echo $((SECONDS - $1))
}
