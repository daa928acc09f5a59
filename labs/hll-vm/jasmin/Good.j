; A valid class: adds two ints and prints the sum.  Assemble: jasmin Good.j ; run: java Good
; expect: accepted
.class public Good
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 3
    .limit locals 1
    getstatic java/lang/System/out Ljava/io/PrintStream;
    iconst_2
    iconst_3
    iadd
    invokevirtual java/io/PrintStream/println(I)V
    return
.end method
