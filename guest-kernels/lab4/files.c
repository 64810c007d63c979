/*
 * Lab 4 guest: the file service (minivmm run --share DIR). Cats hello.txt from the share, writes a copy back
 * as from-guest.txt, and checks that three ways out of the share are refused.
 */
#include "runtime/hypercall.h"
#include "runtime/runtime.h"

static const char header[] = "copied by lab4/files through MVM_HC_FS_WRITE:\n";
static char text[1024];
static struct mvm_hc_stat st;

void guest_main(void)
{
    long fd, n, total = 0, reads = 0;

    fd = hc_fs_open("hello.txt", MVM_HC_O_RDONLY);
    GUEST_ASSERT_EQ(fd, 0, "open hello.txt: descriptor 0 (run with --share DIR, DIR holding hello.txt)");
    GUEST_ASSERT_EQ(hc_fs_stat(fd, &st), 0, "stat hello.txt");
    GUEST_ASSERT_EQ(st.size > 0 && st.size <= 512, 1, "hello.txt holds 1..512 bytes");
    /* Read in pieces of 64 bytes, to the end (0). */
    while ((n = hc_fs_read(fd, text + total, 64)) > 0) {
        total += n;
        reads++;
        GUEST_ASSERT(total <= 512);
    }
    GUEST_ASSERT_EQ(n, 0, "read at the end of the file: 0");
    GUEST_ASSERT_EQ((uint64_t)total, st.size, "read as many bytes as stat said");
    GUEST_ASSERT_EQ(hc_console_write(text, (unsigned long)total), total, "cat hello.txt");
    GUEST_ASSERT_EQ(hc_fs_close(fd), 0, "close");
    GUEST_ASSERT_EQ(hc_fs_close(fd), -MVM_HC_EBADF, "close it again: -EBADF");

    fd = hc_fs_open("from-guest.txt", MVM_HC_O_WRONLY | MVM_HC_O_CREAT | MVM_HC_O_TRUNC);
    GUEST_ASSERT_EQ(fd, 0, "create from-guest.txt: descriptor 0 again, the lowest free");
    GUEST_ASSERT_EQ(hc_fs_write(fd, header, sizeof(header) - 1), sizeof(header) - 1, "write the header");
    GUEST_ASSERT_EQ(hc_fs_write(fd, text, (unsigned long)total), total, "write the copy");
    GUEST_ASSERT_EQ(hc_fs_read(fd, text, 1), -MVM_HC_EBADF, "read from a write-only descriptor: -EBADF");
    GUEST_ASSERT_EQ(hc_fs_close(fd), 0, "close from-guest.txt");

    GUEST_ASSERT_EQ(hc_fs_open("../hello.txt", MVM_HC_O_RDONLY), -MVM_HC_EXDEV, "'..' out of the share: -EXDEV");
    GUEST_ASSERT_EQ(hc_fs_open("/etc/passwd", MVM_HC_O_RDONLY), -MVM_HC_EXDEV, "an absolute path: -EXDEV");
    GUEST_ASSERT_EQ(hc_fs_open("hello.txt", 0x10000 /* O_DIRECTORY */), -MVM_HC_EINVAL, "a flag not allowed");
    guest_printf("lab4/files: %ld bytes of hello.txt in %ld reads, copied to from-guest.txt; 3 escapes refused\n",
                 total, reads);
}
