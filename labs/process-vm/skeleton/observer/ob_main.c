/* observer: count guest instructions and superblocks with ONE helper call per superblock.
 *
 * Your tool for task t5-observer of labs/process-vm. As handed out it builds, runs and prints its
 * three lines, but counts only translations: every superblock entered and every guest instruction
 * is still 0, so the lab's observer checks fail until you fill in the TODOs below.
 *
 * How a Valgrind tool sees the program: Valgrind hands ob_instrument every superblock (a straight
 * run of guest code, possibly several basic blocks joined by chasing) as VEX IR, once, when it
 * translates it. The tool returns the IR it wants to run instead. Anything done in ob_instrument
 * runs once per TRANSLATION; anything done in a helper called from the returned IR runs once per
 * EXECUTION of the superblock. Lackey (lackey/lk_main.c, --basic-counts=yes) calls a helper per
 * guest instruction; your tool must make only one call per superblock and still count every
 * instruction.
 *
 * Output (stderr, one line each, parsed by vmlab; keep them as they are):
 *   ==PID== observer: superblocks translated: N
 *   ==PID== observer: superblocks entered: N
 *   ==PID== observer: guest instrs: N
 *
 * Build and try:  vmlab procvm tool build && vmlab procvm tool run -- /bin/true
 * (lackey's counts are printed beside yours: entered must equal lackey's, instructions be within 2%).
 * Useful headers: VEX/pub/libvex_ir.h (IRSB, IRStmt, Ist_IMark, IRDirty, unsafeIRDirty_0_N,
 * mkIRExprVec_1, mkIRExpr_HWord, deepCopyIRSBExceptStmts, addStmtToIRSB).
 *
 * Copy of Valgrind's tool skeleton (none/nl_main.c); GPL-2.0-or-later like Valgrind.
 */

#include "pub_tool_basics.h"
#include "pub_tool_tooliface.h"
#include "pub_tool_libcprint.h"
#include "pub_tool_machine.h"     /* VG_(fnptr_to_fnentry) */

static ULong n_translated = 0;    /* superblocks instrumented (== translations made) */
static ULong n_entered    = 0;    /* superblocks executed */
static ULong n_instrs     = 0;    /* guest instructions executed */

/* The helper your instrumentation calls, once every time an instrumented superblock starts.
   TODO task 5: count one superblock entered and add the superblock's instruction count, which
   ob_instrument computed at translation time and passes as the argument.
   (Remove the `unused` attribute once ob_instrument calls it.) */
static VG_REGPARM(1) __attribute__((unused)) void ob_sb_entered(HWord instrs_in_sb)
{
   (void)instrs_in_sb;
}

static void ob_post_clo_init(void)
{
}

static
IRSB* ob_instrument ( VgCallbackClosure* closure,
                      IRSB* sbIn,
                      const VexGuestLayout* layout,
                      const VexGuestExtents* vge,
                      const VexArchInfo* archinfo_host,
                      IRType gWordTy, IRType hWordTy )
{
   n_translated++;

   /* TODO task 5, step 1: walk sbIn->stmts[0 .. sbIn->stmts_used - 1] once and count the
      statements whose tag is Ist_IMark: each guest instruction starts with one. */

   /* TODO task 5, step 2: build the superblock to run instead and return it: a copy of sbIn
      without its statements (deepCopyIRSBExceptStmts), then the preamble (the statements before
      the first Ist_IMark) unchanged, then ONE dirty call of ob_sb_entered whose argument is the
      count of step 1 (unsafeIRDirty_0_N, VG_(fnptr_to_fnentry), mkIRExprVec_1, mkIRExpr_HWord,
      IRStmt_Dirty), then every remaining statement unchanged (addStmtToIRSB for each).
      Think about what a side exit (Ist_Exit) in the middle of the superblock does to your count. */

   return sbIn;   /* as handed out: the superblock runs unchanged, nothing is counted */
}

static void ob_fini(Int exitcode)
{
   VG_(umsg)("observer: superblocks translated: %llu\n", n_translated);
   VG_(umsg)("observer: superblocks entered: %llu\n", n_entered);
   VG_(umsg)("observer: guest instrs: %llu\n", n_instrs);
}

static void ob_pre_clo_init(void)
{
   VG_(details_name)            ("Observer");
   VG_(details_version)         (NULL);
   VG_(details_description)     ("counts guest instructions, one helper call per superblock");
   VG_(details_copyright_author)("vmlab process-vm lab, after Nulgrind by Nicholas Nethercote.");
   VG_(details_bug_reports_to)  (VG_BUGS_TO);
   VG_(details_avg_translation_sizeB) ( 275 );
   VG_(basic_tool_funcs)        (ob_post_clo_init, ob_instrument, ob_fini);
}

VG_DETERMINE_INTERFACE_VERSION(ob_pre_clo_init)
