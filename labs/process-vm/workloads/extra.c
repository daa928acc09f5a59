/* extra: the default `workload` input: a tiny bytecode interpreter (a switch, so an indirect jump
   through a table) over a string it builds itself. Replace it with --input workload=FILE.c; tutors
   re-run the lab with a program of their own. Prints one deterministic line. */
#include <stdio.h>
#include <string.h>

enum { PUSH, ADD, MUL, DUP, DROP, SWAP, HALT };

static long run(const unsigned char *code, int rounds)
{
    long stack[64];
    long total = 0;
    for (int r = 0; r < rounds; r++) {
        int sp = 0;
        for (const unsigned char *pc = code;; pc++) {
            switch (*pc) {
            case PUSH: stack[sp++] = *++pc + r; break;
            case ADD: sp--; stack[sp - 1] += stack[sp]; break;
            case MUL: sp--; stack[sp - 1] = (stack[sp - 1] * stack[sp]) % 1000003; break;
            case DUP: stack[sp] = stack[sp - 1]; sp++; break;
            case DROP: sp--; break;
            case SWAP: { long t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; } break;
            default: total += sp ? stack[sp - 1] : 0; goto next;
            }
        }
    next:;
    }
    return total;
}

int main(void)
{
    static const unsigned char code[] = {PUSH, 3, PUSH, 4, ADD, DUP, MUL, PUSH, 7, SWAP, DROP,
                                         DUP, ADD, PUSH, 2, MUL, HALT};
    char text[256];
    snprintf(text, sizeof text, "%s-%s", "process", "vm");
    printf("extra result=%ld len=%zu\n", run(code, 2000), strlen(text));
    return 0;
}
