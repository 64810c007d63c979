#!/bin/sh
# What one boot of the QEMU runner does: the integration suite on real KVM, then every guest's dumps
# between markers, for tests/diff/test_diff.sh on the host. POSIX sh (busybox).
# Tests that need what QEMU's software CPU lacks (segment limit checks) skip on this.
MINIVMM_KVM_UNDER_TCG=1
export MINIVMM_KVM_UNDER_TCG
./run-suite.sh . kvm
echo "=== DUMPS BEGIN"
./dump-all.sh . kvm guests.txt
echo "=== DUMPS END"
