/**
 * An allocation-heavy loop: small objects, most of them dying young, a few kept in a ring so escape
 * analysis cannot remove the allocations and the young collector has live data to copy.
 *
 * Usage: java Alloc ITERS REPEATS
 * Prints per repetition:  VMLAB rep=0 iters=1000000 ns=12345678
 */
public final class Alloc {
    static final class Node {
        final long value;
        final Node next;
        final int[] payload;
        Node(long value, Node next) {
            this.value = value;
            this.next = next;
            this.payload = new int[8];
        }
    }

    static Node[] ring = new Node[4096];

    static long churn(int iters) {
        long sum = 0;
        Node prev = null;
        for (int i = 0; i < iters; i++) {
            Node n = new Node(i, prev);
            n.payload[i & 7] = i;
            prev = (i & 15) == 0 ? null : n;
            if ((i & 255) == 0) {
                ring[(i >>> 8) & (ring.length - 1)] = n;
            }
            sum += n.value + n.payload[i & 7];
        }
        return sum;
    }

    public static void main(String[] args) {
        int iters = Integer.parseInt(args[0]);
        int repeats = Integer.parseInt(args[1]);
        long check = 0;
        for (int r = 0; r < repeats; r++) {
            long t0 = System.nanoTime();
            check += churn(iters);
            long t1 = System.nanoTime();
            System.out.println("VMLAB rep=" + r + " iters=" + iters + " ns=" + (t1 - t0));
        }
        System.out.println("VMLAB checksum=" + check);
    }
}
