/* sort: insertion sort of N pseudo-random numbers; branchy, with data-dependent inner loops.
   Usage: sort [N]. Prints a checksum of the sorted array (same on every ISA: fixed-width types). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000UL;
    uint32_t *a = malloc(n * sizeof *a);
    if (!a)
        return 1;
    uint32_t x = 7;
    for (unsigned long i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = x >> 8;
    }
    for (unsigned long i = 1; i < n; i++) {
        uint32_t v = a[i];
        unsigned long j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
    uint64_t check = 0;
    for (unsigned long i = 0; i < n; i++)
        check = check * 31u + a[i];
    printf("sort n=%lu min=%u max=%u check=%llu\n", n, n ? a[0] : 0u, n ? a[n - 1] : 0u,
           (unsigned long long)check);
    free(a);
    return 0;
}
