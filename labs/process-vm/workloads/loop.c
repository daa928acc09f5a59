/* loop: a tight arithmetic loop, the best case for a translator (one hot block, reused N times).
   Usage: loop [N]. Prints a checksum that depends on every iteration, so nothing is folded away. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000UL;
    unsigned int x = 1;
    unsigned long sum = 0;
    for (unsigned long i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        sum += x >> 16;
    }
    printf("loop n=%lu sum=%lu\n", n, sum);
    return 0;
}
