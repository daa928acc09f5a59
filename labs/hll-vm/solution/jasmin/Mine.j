; Mine: a valid class with a loop (sums 1..10 and prints 55).
; expect: accepted
.class public Mine
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 3
    .limit locals 3
    iconst_0
    istore_1
    iconst_1
    istore_2
Next:
    iload_1
    iload_2
    iadd
    istore_1
    iinc 2 1
    iload_2
    bipush 10
    if_icmple Next
    getstatic java/lang/System/out Ljava/io/PrintStream;
    iload_1
    invokevirtual java/io/PrintStream/println(I)V
    return
.end method
