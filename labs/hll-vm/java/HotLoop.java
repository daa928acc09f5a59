/**
 * The hot loop of the HLL-VM lab: one static method with a counted loop whose body the JIT cannot
 * remove (a linear congruential generator feeds a running sum that is printed at the end).
 *
 * Usage: java HotLoop ITERS REPEATS
 * Prints one machine-readable line per repetition, then the checksum:
 *   VMLAB rep=0 iters=1000000 ns=17012345
 *   VMLAB checksum=123456789
 * Repetition 0 runs cold (interpreted, then OSR-compiled in the middle of the loop); later ones show
 * the warm-up curve as the tiers take over.
 */
public final class HotLoop {
    static long loop(int iters, long seed) {
        long x = seed;
        long sum = 0;
        for (int i = 0; i < iters; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            sum += (x >>> 33) ^ i;
        }
        return sum;
    }

    public static void main(String[] args) {
        int iters = Integer.parseInt(args[0]);
        int repeats = Integer.parseInt(args[1]);
        long check = 0;
        for (int r = 0; r < repeats; r++) {
            long t0 = System.nanoTime();
            check += loop(iters, r);
            long t1 = System.nanoTime();
            System.out.println("VMLAB rep=" + r + " iters=" + iters + " ns=" + (t1 - t0));
        }
        System.out.println("VMLAB checksum=" + check);
    }
}
