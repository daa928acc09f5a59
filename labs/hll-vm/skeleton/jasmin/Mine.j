; Your Jasmin classes for task 3 (verifier) start here: this folder is the lab's default --input jasmin.
; As handed out it holds one valid class that does nothing interesting, so the task's checks fail
; (they want at least one valid class and at least two the verifier rejects).
; TODO task 3, question 7: turn this class into a valid one with a loop (see ../../jasmin/Loop.j),
; and add three broken classes of your own, one file each, rejected for three different reasons.
; Every file says what the JVM should do in one line: `; expect: accepted` or
; `; expect: <part of the VerifyError message>`. Try one file: vmlab hllvm verify Mine.j
; expect: accepted
.class public Mine
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 1
    getstatic java/lang/System/out Ljava/io/PrintStream;
    iconst_0
    invokevirtual java/io/PrintStream/println(I)V
    return
.end method
