#!/bin/sh
# What one boot of the QEMU runner does: the integration suite on real KVM, then every guest's dumps
# between markers, for tests/diff/test_diff.sh on the host; then, where the payload has bash and gdb
# (hostbin/), the gdb stub test on kvm. POSIX sh (busybox).
# Tests that need what QEMU's software CPU lacks (segment limit checks) skip on this.
MINIVMM_KVM_UNDER_TCG=1
export MINIVMM_KVM_UNDER_TCG
./run-suite.sh . kvm
echo "=== DUMPS BEGIN"
./dump-all.sh . kvm guests.txt
echo "=== DUMPS END"
if [ -x hostbin/bash ] && [ -x hostbin/gdb ]; then
    # The stub listens on 127.0.0.1: the initramfs leaves lo down.
    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
    # gdb's Python finds its codecs under PYTHONHOME (encodings only; gdb runs without its own Python module).
    PATH=$PWD/hostbin:$PATH PYTHONHOME=$PWD/gdb-python PYTHONDONTWRITEBYTECODE=1 MINIVMM_GDB_BACKENDS=kvm \
        hostbin/bash ./test_gdb.sh .
fi
