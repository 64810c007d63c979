#!/bin/sh
# What one boot of the QEMU runner does: the integration suite on real KVM, then every guest's dumps
# between markers, for tests/diff/test_diff.sh on the host. POSIX sh (busybox).
./run-suite.sh . kvm
echo "=== DUMPS BEGIN"
./dump-all.sh . kvm guests.txt
echo "=== DUMPS END"
