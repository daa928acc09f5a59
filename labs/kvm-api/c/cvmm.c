/* cvmm.c: the C baseline of the kvm-api lab, a VMM in one page of C.
 *
 * It runs the same guest bytes as vmlab's Python VMM (src/vmlab/kvmapi/vmm.py) on the same machine
 * (RAM 0-640 KiB, code at ORG, real mode with SS:SP = 9000:F000, or flat 32-bit protected mode) with
 * the same devices reduced to what the timed programs need: port 0x3f8 prints, port 0xf4 stops
 * (debug exit), other ports are ignored and read 0xff, MMIO reads return 0. Compare its KVM_RUN loop
 * with the Python one: what is left is the cost of the kernel's exit path, the rest is the VMM's own.
 *
 *   gcc -O2 -o cvmm cvmm.c && ./cvmm out.bin 0x1000 16
 *
 * Prints one JSON line on stdout: exits by reason, loop_ns (the KVM_RUN loop's wall time), stop.
 * Exit status: 0 after hlt or debug exit, 1 usage or set-up error, 4 guest fault, 5 timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE 0xA0000
#define SERIAL_PORT 0x3f8
#define DEBUG_EXIT_PORT 0xf4

static volatile sig_atomic_t expired;
static void on_alarm(int sig) { (void)sig; expired = 1; }

static void die(const char *what) { fprintf(stderr, "cvmm: %s: %s\n", what, strerror(errno)); exit(1); }

static void flat(struct kvm_segment *s, int code, int sel) {
    s->base = 0; s->limit = 0xffffffff; s->selector = sel; s->type = code ? 0xb : 0x3;
    s->present = 1; s->dpl = 0; s->db = 1; s->s = 1; s->l = 0; s->g = 1; s->avl = 0;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: cvmm CODE.bin [ORG] [BITS] [TIMEOUT_S]\n"); return 1; }
    unsigned long org = argc > 2 ? strtoul(argv[2], NULL, 0) : 0x1000;
    int bits = argc > 3 ? atoi(argv[3]) : 16;
    int timeout = argc > 4 ? atoi(argv[4]) : 10;

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL); /* Intel real mode needs it; others may refuse */

    uint8_t *mem = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) die("mmap guest RAM");
    FILE *f = fopen(argv[1], "rb");
    if (!f) die(argv[1]);
    size_t n = fread(mem + org, 1, RAM_SIZE - org, f);
    fclose(f);
    if (n == 0) { fprintf(stderr, "cvmm: %s holds no code\n", argv[1]); return 1; }
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
    struct kvm_regs regs = {.rip = org, .rflags = 2};
    if (bits == 32) {
        sregs.cr0 |= 1;
        flat(&sregs.cs, 1, 8);
        flat(&sregs.ds, 0, 0x10); flat(&sregs.es, 0, 0x10); flat(&sregs.fs, 0, 0x10);
        flat(&sregs.gs, 0, 0x10); flat(&sregs.ss, 0, 0x10);
        regs.rsp = 0x9000 * 16 + 0xf000;
    } else {
        sregs.cs.base = sregs.cs.selector = 0; sregs.ds.base = sregs.ds.selector = 0;
        sregs.es.base = sregs.es.selector = 0; sregs.fs.base = sregs.fs.selector = 0;
        sregs.gs.base = sregs.gs.selector = 0;
        sregs.ss.base = 0x9000 * 16; sregs.ss.selector = 0x9000;
        regs.rsp = 0xf000;
    }
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: KVM_RUN returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm(timeout);

    unsigned long io = 0, mmio = 0, hlt = 0, other = 0, out_bytes = 0;
    const char *stop = "HLT";
    int status = 0;
    uint64_t start = now_ns();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR && !expired) continue;
            stop = errno == EINTR ? "timeout" : "KVM_RUN failed";
            status = errno == EINTR ? 5 : 1;
            break;
        }
        if (run->exit_reason == KVM_EXIT_IO) {
            io++;
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            if (run->io.direction == KVM_EXIT_IO_OUT) {
                if (run->io.port == SERIAL_PORT) {
                    out_bytes += run->io.count;
                    fwrite(data, run->io.size, run->io.count, stderr);
                } else if (run->io.port == DEBUG_EXIT_PORT) {
                    stop = "debug-exit";
                    break;
                }
            } else {
                memset(data, 0xff, (size_t)run->io.size * run->io.count);
            }
        } else if (run->exit_reason == KVM_EXIT_MMIO) {
            mmio++;
            if (!run->mmio.is_write) memset(run->mmio.data, 0, sizeof run->mmio.data);
        } else if (run->exit_reason == KVM_EXIT_HLT) {
            hlt++;
            break;
        } else {
            other++;
            stop = "fault";
            status = 4;
            break;
        }
    }
    uint64_t loop_ns = now_ns() - start;
    printf("{\"IO\": %lu, \"MMIO\": %lu, \"HLT\": %lu, \"other\": %lu, \"exit_reason\": %u, "
           "\"loop_ns\": %llu, \"output_bytes\": %lu, \"stop\": \"%s\"}\n",
           io, mmio, hlt, other, run->exit_reason, (unsigned long long)loop_ns, out_bytes, stop);
    munmap(run, run_size);
    munmap(mem, RAM_SIZE);
    close(vcpu); close(vm); close(kvm);
    return status;
}
