/* recurse: naive Fibonacci, one call and one return per step; stresses calls, returns and
   indirect-jump handling (a return is an indirect branch to a translator).
   Usage: recurse [N]. Prints fib(N) and the number of calls made. */
#include <stdio.h>
#include <stdlib.h>

static unsigned long calls;

__attribute__((noinline)) static unsigned long fib(unsigned int n)
{
    calls++;
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(int argc, char **argv)
{
    unsigned int n = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : 20u;
    unsigned long f = fib(n);
    printf("recurse n=%u fib=%lu calls=%lu\n", n, f, calls);
    return 0;
}
