/* observer: count guest instructions and superblocks with ONE helper call per superblock.
 *
 * The exercise of labs/process-vm (task t3-observer). Valgrind hands this tool every superblock
 * (a straight run of guest code, possibly several basic blocks joined by chasing) as VEX IR,
 * once, when it translates it. The tool returns the IR it wants to run instead. Anything done in
 * ob_instrument runs once per TRANSLATION; anything done in a helper called from the returned
 * IR runs once per EXECUTION of the superblock. Lackey calls a helper per guest instruction
 * (--basic-counts=yes); this tool counts the Ist_IMark statements (one per guest instruction)
 * while translating, and adds that number in a single helper call at the top of the superblock.
 *
 * The price of one call per superblock: when a superblock leaves early through a side exit
 * (a taken conditional branch in the middle of a chased superblock), the instructions after
 * the exit are counted although they did not run. So the count is an upper bound on lackey's,
 * equal when no side exit is taken, and close on ordinary programs.
 *
 * Output (stderr, one line each, parsed by vmlab):
 *   ==PID== observer: superblocks translated: N
 *   ==PID== observer: superblocks entered: N
 *   ==PID== observer: guest instrs: N
 *
 * Copy of Valgrind's tool skeleton (none/nl_main.c); GPL-2.0-or-later like Valgrind.
 */

#include "pub_tool_basics.h"
#include "pub_tool_tooliface.h"
#include "pub_tool_libcprint.h"
#include "pub_tool_machine.h"     /* VG_(fnptr_to_fnentry) */

static ULong n_translated = 0;    /* superblocks instrumented (== translations made) */
static ULong n_entered    = 0;    /* superblocks executed */
static ULong n_instrs     = 0;    /* guest instructions executed (side exits over-count) */

/* Runs every time an instrumented superblock starts: one call, whatever its length. */
static VG_REGPARM(1) void ob_sb_entered(HWord instrs_in_sb)
{
   n_entered++;
   n_instrs += instrs_in_sb;
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
   IRSB*    sbOut;
   IRDirty* di;
   Int      i, first_imark;
   HWord    instrs = 0;

   n_translated++;

   /* 1. Walk the superblock once: each guest instruction starts with an Ist_IMark. */
   for (i = 0; i < sbIn->stmts_used; i++) {
      IRStmt* st = sbIn->stmts[i];
      if (st && st->tag == Ist_IMark)
         instrs++;
   }

   /* 2. Rebuild it: the preamble before the first IMark, then ONE helper call that adds this
         superblock's instruction count, then every statement unchanged. */
   sbOut = deepCopyIRSBExceptStmts(sbIn);
   first_imark = 0;
   while (first_imark < sbIn->stmts_used && sbIn->stmts[first_imark]->tag != Ist_IMark) {
      addStmtToIRSB(sbOut, sbIn->stmts[first_imark]);
      first_imark++;
   }
   di = unsafeIRDirty_0_N(1, "ob_sb_entered", VG_(fnptr_to_fnentry)(&ob_sb_entered),
                          mkIRExprVec_1(mkIRExpr_HWord(instrs)));
   addStmtToIRSB(sbOut, IRStmt_Dirty(di));
   for (i = first_imark; i < sbIn->stmts_used; i++)
      addStmtToIRSB(sbOut, sbIn->stmts[i]);
   return sbOut;
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
