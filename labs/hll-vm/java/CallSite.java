/**
 * One interface call site seen by 1, 2 or 3 receiver classes (monomorphic, bimorphic, megamorphic).
 *
 * Usage: java CallSite KINDS ITERS REPEATS
 * Each JVM run uses one KINDS value, so the call site's profile holds exactly KINDS receiver types
 * from the first call on (a site that once saw three types stays megamorphic for the process).
 * Prints per repetition:  VMLAB rep=0 kinds=2 iters=1000000 ns=4012345
 */
public final class CallSite {
    interface Shape {
        int area();
    }

    static final class Square implements Shape {
        final int s;
        Square(int s) { this.s = s; }
        public int area() { return s * s; }
    }

    static final class Rect implements Shape {
        final int w, h;
        Rect(int w, int h) { this.w = w; this.h = h; }
        public int area() { return w * h; }
    }

    static final class Tri implements Shape {
        final int b, h;
        Tri(int b, int h) { this.b = b; this.h = h; }
        public int area() { return (b * h) >> 1; }
    }

    /** The measured call site: one invokeinterface in a loop. */
    static long total(Shape[] shapes, int iters) {
        long sum = 0;
        int mask = shapes.length - 1;
        for (int i = 0; i < iters; i++) {
            sum += shapes[i & mask].area();
        }
        return sum;
    }

    public static void main(String[] args) {
        int kinds = Integer.parseInt(args[0]);
        int iters = Integer.parseInt(args[1]);
        int repeats = Integer.parseInt(args[2]);
        Shape[] shapes = new Shape[1024];
        for (int i = 0; i < shapes.length; i++) {
            int k = i % kinds;
            shapes[i] = k == 0 ? new Square(i) : k == 1 ? new Rect(i, 3) : new Tri(i, 5);
        }
        long check = 0;
        for (int r = 0; r < repeats; r++) {
            long t0 = System.nanoTime();
            check += total(shapes, iters);
            long t1 = System.nanoTime();
            System.out.println("VMLAB rep=" + r + " kinds=" + kinds + " iters=" + iters + " ns=" + (t1 - t0));
        }
        System.out.println("VMLAB checksum=" + check);
    }
}
