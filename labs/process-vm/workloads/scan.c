/* scan: fill a buffer, then read it back with a cache-line stride several times; memory-bound,
   the case where memcheck's and cachegrind's per-access instrumentation costs most.
   Usage: scan [KIB] [PASSES]. Prints the sum of what was read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned long kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256UL;
    unsigned long passes = argc > 2 ? strtoul(argv[2], NULL, 10) : 4UL;
    unsigned long n = kib * 1024 / sizeof(uint32_t);
    uint32_t *buf = malloc(n * sizeof *buf + 1);
    if (!buf)
        return 1;
    for (unsigned long i = 0; i < n; i++)
        buf[i] = (uint32_t)(i * 2654435761u);
    uint64_t sum = 0;
    for (unsigned long p = 0; p < passes; p++)
        for (unsigned long i = p % 16; i < n; i += 16)
            sum += buf[i];
    printf("scan kib=%lu passes=%lu sum=%llu\n", kib, passes, (unsigned long long)sum);
    free(buf);
    return 0;
}
